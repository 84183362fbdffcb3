//! Child processes a test starts: killed when the test ends, passes or
//! panics, so no binary outlives the test that spawned it.

use std::process::{Child, Command, ExitStatus};

/// A running child process, SIGKILLed and reaped on drop.
#[derive(Debug)]
pub struct Running {
    child: Child,
}

impl Running {
    /// Spawns `command`; panics if it cannot start.
    pub fn spawn(command: &mut Command) -> Self {
        Self {
            child: command.spawn().expect("the process starts"),
        }
    }

    /// Its standard output, when spawned with `Stdio::piped()` (once).
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends signal `name` (`TERM`, `STOP`, ...) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill(1) runs");
        assert!(status.success(), "kill -{name} {}", self.child.id());
    }

    /// kill -9, and waits for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// kill -9 a process that must still be running, and proves the kill
    /// is what ended it (not an exit of its own before the signal came).
    pub fn kill_9(&mut self) {
        assert!(
            self.is_running(),
            "process {} ended before it was killed",
            self.id()
        );
        self.child.kill().expect("SIGKILL is delivered");
        let status = self.child.wait().expect("the killed process is reaped");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "process {} died of SIGKILL: {status:?}",
            self.id()
        );
    }

    /// Waits (up to `limit`) for this consumer process to hold a request's
    /// lease in `database`, then kills it with -9: a kill of a process that
    /// had not started working proves nothing.
    pub async fn kill_9_while_working(
        &mut self,
        database: &crate::TestDatabase,
        limit: std::time::Duration,
    ) {
        let pid = self.id();
        crate::eventually("the consumer to hold a request's lease", limit, || async {
            database.holds_lease(pid).await.then_some(())
        })
        .await;
        self.kill_9();
    }

    /// Waits for the process to exit by itself.
    pub fn wait(&mut self) -> ExitStatus {
        self.child.wait().expect("the process can be waited for")
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}
