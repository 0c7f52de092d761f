//! Just enough QMP to stop and continue the VM.

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects and leaves the capabilities negotiation mode.
    pub fn connect(path: &Path) -> Qmp {
        let s = UnixStream::connect(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let writer = s.try_clone().expect("clone the socket");
        let mut q = Qmp {
            reader: BufReader::new(s),
            writer,
        };
        let greeting = q.line();
        assert!(
            greeting.get("QMP").is_some(),
            "not a QMP greeting: {greeting}"
        );
        q.execute("qmp_capabilities");
        q
    }

    fn line(&mut self) -> Value {
        let mut l = String::new();
        self.reader.read_line(&mut l).expect("read QMP");
        serde_json::from_str(&l).unwrap_or_else(|e| panic!("QMP said {l:?}: {e}"))
    }

    /// Runs `command`; panics unless QMP returns success (events skipped).
    pub fn execute(&mut self, command: &str) {
        self.execute_with(command, &serde_json::json!({}));
    }

    /// Runs `command` with `arguments` (a JSON object).
    pub fn execute_with(&mut self, command: &str, arguments: &Value) {
        let msg = serde_json::json!({ "execute": command, "arguments": arguments });
        writeln!(self.writer, "{msg}").expect("write QMP");
        loop {
            let v = self.line();
            if v.get("return").is_some() {
                return;
            }
            assert!(v.get("error").is_none(), "QMP {command}: {v}");
        }
    }
}
