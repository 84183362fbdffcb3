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
