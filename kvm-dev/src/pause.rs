//! A consistent snapshot of a running VM: its QEMU process stopped
//! (SIGSTOP) for the length of one command, and always resumed (SIGCONT):
//! when the guard drops, and, should this process die first (Ctrl-C, a
//! kill), by a guardian process started before the stop that waits for
//! this one to end. No signal handler, no unsafe code: `kill(1)` and
//! `sh` do the signalling.
//!
//! Cost: the guest's vCPUs and devices stand still for the command's
//! length (a `kvm ps` of a 256 MiB guest: tens of milliseconds); its
//! clocks then jump forward by as much, as after a QMP `stop`/`cont`.

use std::io;
use std::process::{Command, Stdio};

/// The QEMU process `pid`, stopped until this drops.
#[derive(Debug)]
pub struct Paused {
    pid: u32,
}

/// Sends `signal` (`STOP`, `CONT`, `0`) to `pid` with kill(1).
fn kill(signal: &str, pid: u32) -> io::Result<bool> {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
}

impl Paused {
    /// Stops `pid`, after starting the guardian that resumes it when this
    /// process ends however it ends.
    pub fn stop(pid: u32) -> io::Result<Paused> {
        if !kill("0", pid)? {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no process {pid} to stop (or no right to signal it)"),
            ));
        }
        guardian(std::process::id(), pid)?;
        if !kill("STOP", pid)? {
            return Err(io::Error::other(format!("kill -STOP {pid} failed")));
        }
        Ok(Paused { pid })
    }
}

/// Starts the guardian: it resumes `pid` once `watched` has ended. It
/// ignores the terminal's signals and polls every 50 ms, in its own
/// session (setsid), so a Ctrl-C to the foreground job does not reach it.
fn guardian(watched: u32, pid: u32) -> io::Result<()> {
    Command::new("setsid")
        .args([
            "sh",
            "-c",
            "trap '' INT TERM HUP; while kill -0 \"$0\" 2>/dev/null; do sleep 0.05; done; kill -CONT \"$1\"",
        ])
        .arg(watched.to_string())
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(drop)
}

impl Drop for Paused {
    fn drop(&mut self) {
        let _ = kill("CONT", self.pid);
    }
}

/// The state letter of `pid` in /proc/PID/stat (`T` when stopped).
pub fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn wait_for(pid: u32, want: char) -> bool {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if state(pid) == Some(want) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn stopped_while_held_and_resumed_after() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        {
            let _p = Paused::stop(pid).unwrap();
            assert!(wait_for(pid, 'T'), "not stopped: {:?}", state(pid));
        }
        assert!(wait_for(pid, 'S'), "not resumed: {:?}", state(pid));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn the_guardian_resumes_when_the_holder_dies() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        // A holder that stops the child and is killed before it can
        // resume it: the guardian must.
        let p = Paused::stop(pid).unwrap();
        assert!(wait_for(pid, 'T'));
        std::mem::forget(p);
        // This process lives on: a guardian watching a process that has
        // ended stands for the holder's death.
        let mut gone = Command::new("true").spawn().unwrap();
        let gone_pid = gone.id();
        gone.wait().unwrap();
        guardian(gone_pid, pid).unwrap();
        assert!(wait_for(pid, 'S'), "not resumed: {:?}", state(pid));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            Paused::stop(u32::MAX - 7).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
