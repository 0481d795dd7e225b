//! A machine with at least 1,000 processes, for the agent's benchmarks:
//! idle `sleep` children are started until the process table is that big,
//! and killed and reaped however the bench ends.

use std::fs;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

/// The machine must have at least this many processes while measuring.
pub const PROCESSES: usize = 1000;

/// The bench's sleepers; killed and reaped when dropped.
pub struct Sleepers(Vec<Child>);

impl Drop for Sleepers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

/// What every section measures on.
pub struct Machine {
    pub processes: usize,
    pub started_here: usize,
}

/// Starts `sleep` children until the machine has [`PROCESSES`] (counted
/// again after they start: other processes come and go).
pub fn populate() -> (Machine, Sleepers) {
    let mut sleepers = Sleepers(Vec::new());
    loop {
        let missing = PROCESSES.saturating_sub(count_processes());
        if missing == 0 {
            break;
        }
        // A few more, for processes that end meanwhile.
        for _ in 0..missing + 10 {
            let child = Command::new("sleep")
                .arg("600")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("cannot start sleep");
            sleepers.0.push(child);
        }
        // Let them all finish exec, so they are `sleep` and idle.
        thread::sleep(Duration::from_millis(500));
    }
    let machine = Machine {
        processes: count_processes(),
        started_here: sleepers.0.len(),
    };
    (machine, sleepers)
}

pub fn count_processes() -> usize {
    fs::read_dir("/proc")
        .expect("/proc is readable")
        .flatten()
        .filter(|e| is_pid(e.file_name().as_encoded_bytes()))
        .count()
}

pub fn is_pid(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(u8::is_ascii_digit)
}
