//! A real three-node RabbitMQ cluster on this machine, beside (never
//! touching) the machine's own broker on 5672: its own node names
//! (`dyn1@localhost`...), AMQP ports, distribution ports, data and log
//! directories under a temporary directory, and an Erlang cookie of its own
//! (the nodes and `rabbitmqctl` share a `HOME` holding it). No management
//! plugin. Each node runs in a process group of its own, killed on drop.
//!
//! Nodes can be killed with SIGKILL (the Erlang VM itself, as a crashed
//! machine would) and started again; a restarted node rejoins the cluster
//! from its data directory.

use dynamo_runtime::{BrokerSettings, Env};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where RabbitMQ's own scripts live: the `/usr/sbin` wrappers switch to the
/// `rabbitmq` user and its `HOME`, which would share the machine broker's
/// cookie.
const BIN: &str = "/usr/lib/rabbitmq/bin";

pub struct RabbitCluster {
    dir: PathBuf,
    nodes: Vec<Node>,
}

struct Node {
    name: String,
    amqp_port: u16,
    dist_port: u16,
    /// The node's process group leader (the start script, whose child is
    /// the Erlang VM); `None` while killed.
    process: Option<Child>,
}

impl std::fmt::Debug for RabbitCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitCluster")
            .field("dir", &self.dir)
            .finish()
    }
}

impl RabbitCluster {
    /// Starts nodes `dyn1`..`dynN` on AMQP ports `first_port`.. (distribution
    /// ports 20000 above), joins them into one cluster and waits until every
    /// node runs. Panics (after killing what it started) if they do not.
    pub async fn start(size: usize, first_port: u16) -> Self {
        let dir = std::env::temp_dir().join(format!("dynamo-cluster-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("home")).unwrap();
        let cookie = dir.join("home/.erlang.cookie");
        std::fs::write(&cookie, uuid::Uuid::new_v4().simple().to_string()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o400)).unwrap();
        // Ignore /etc/rabbitmq/rabbitmq-env.conf (the machine broker's name).
        std::fs::write(dir.join("env.conf"), "").unwrap();
        // guest may connect from 127.0.0.1 by default; the tests use it.
        std::fs::write(dir.join("rabbitmq.conf"), "loopback_users = none\n").unwrap();
        let mut cluster = Self {
            nodes: (0..size)
                .map(|i| {
                    let offset = u16::try_from(i).unwrap();
                    Node {
                        name: format!("dyn{}@localhost", i + 1),
                        amqp_port: first_port + offset,
                        dist_port: first_port + offset + 20000,
                        process: None,
                    }
                })
                .collect(),
            dir,
        };
        for index in 0..size {
            cluster.launch(index);
        }
        for index in 0..size {
            cluster.await_startup(index).await;
        }
        let seed = cluster.nodes[0].name.clone();
        for index in 1..size {
            cluster.ctl_ok(index, &["stop_app"]).await;
            cluster.ctl_ok(index, &["join_cluster", &seed]).await;
            cluster.ctl_ok(index, &["start_app"]).await;
        }
        cluster
    }

    /// Settings reaching every node: `RMQ_HOST` as a list.
    pub fn settings(&self) -> BrokerSettings {
        BrokerSettings::from_env(&Env::from_pairs([("RMQ_HOST", self.rmq_host())])).unwrap()
    }

    /// `RMQ_HOST` naming every node, `127.0.0.1:port,...`.
    pub fn rmq_host(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.amqp_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// The index of the node leading quorum queue `queue`, asked of a
    /// running node; `None` while it has no leader.
    pub async fn leader_of(&self, queue: &str) -> Option<usize> {
        let asked = self.running().next()?;
        let output = self
            .ctl(
                asked,
                &[
                    "list_queues",
                    "name",
                    "leader",
                    "--quiet",
                    "--no-table-headers",
                ],
            )
            .await
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let leader = text.lines().find_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next() == Some(queue)).then(|| fields.next())?
        })?;
        self.nodes.iter().position(|n| n.name == leader)
    }

    /// kill -9 the Erlang VM of node `index` (and its start script), and
    /// checks it is gone.
    pub fn kill_9(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        let mut process = node.process.take().expect("the node runs");
        assert!(
            process.try_wait().unwrap().is_none(),
            "node {} ended before it was killed",
            node.name
        );
        kill_group(&process);
        process.wait().unwrap();
    }

    /// Starts a killed node again and waits until it runs (it rejoins the
    /// cluster from its data directory).
    pub async fn restart(&mut self, index: usize) {
        self.launch(index);
        self.await_startup(index).await;
    }

    fn running(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].process.is_some())
    }

    fn node_dir(&self, index: usize) -> PathBuf {
        self.dir.join(format!("n{}", index + 1))
    }

    fn launch(&mut self, index: usize) {
        let dir = self.node_dir(index);
        std::fs::create_dir_all(&dir).unwrap();
        let node = &self.nodes[index];
        let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let mut command = Command::new(Path::new(BIN).join("rabbitmq-server"));
        self.common_env(&mut command)
            .env("RABBITMQ_NODENAME", &node.name)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", node.amqp_port.to_string())
            .env("RABBITMQ_DIST_PORT", node.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", path("mnesia"))
            .env("RABBITMQ_LOG_BASE", path("log"))
            .env(
                "RABBITMQ_CONFIG_FILE",
                self.dir.join("rabbitmq").to_string_lossy().into_owned(),
            )
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", path("plugins"))
            .env("RABBITMQ_ENABLED_PLUGINS", "")
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            )
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // A group of its own: the VM is the script's child.
            .process_group(0);
        let process = command.spawn().expect("rabbitmq-server starts");
        self.nodes[index].process = Some(process);
    }

    fn common_env<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        command
            .env("HOME", self.dir.join("home"))
            .env("RABBITMQ_CONF_ENV_FILE", self.dir.join("env.conf"))
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
    }

    /// Waits up to two minutes for node `index` to run (it registers with
    /// epmd a moment after its process starts, so early asks fail).
    async fn await_startup(&self, index: usize) {
        crate::eventually(
            &format!("RabbitMQ node {} to start", self.nodes[index].name),
            Duration::from_secs(120),
            || async {
                let output = self
                    .ctl(index, &["await_startup", "--timeout", "30"])
                    .await
                    .ok()?;
                output.status.success().then_some(())
            },
        )
        .await;
    }

    async fn ctl_ok(&self, index: usize, args: &[&str]) {
        let output = self.ctl(index, args).await.unwrap();
        assert!(
            output.status.success(),
            "rabbitmqctl -n {} {args:?}: {}",
            self.nodes[index].name,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    async fn ctl(&self, index: usize, args: &[&str]) -> std::io::Result<std::process::Output> {
        let mut command = Command::new(Path::new(BIN).join("rabbitmqctl"));
        self.common_env(&mut command)
            .arg("-n")
            .arg(&self.nodes[index].name)
            .args(args)
            .stdin(Stdio::null());
        tokio::process::Command::from(command)
            .kill_on_drop(true)
            .output()
            .await
    }
}

fn kill_group(process: &Child) {
    let _ = Command::new("kill")
        .args(["-9", "--", &format!("-{}", process.id())])
        .status();
}

impl Drop for RabbitCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut process) = node.process.take() {
                kill_group(&process);
                let _ = process.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
