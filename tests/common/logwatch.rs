//! [`LogWatch`]: a child's stderr lines, collected in a thread and waited on.

use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use super::WAIT;

#[derive(Default)]
struct Lines {
    lines: Vec<String>,
    closed: bool,
}

/// Collects a child's stderr lines in a thread so the pipe never fills.
#[derive(Clone)]
pub struct LogWatch(Arc<(Mutex<Lines>, Condvar)>);

impl LogWatch {
    pub fn spawn(stream: impl Read + Send + 'static) -> Self {
        let w = LogWatch(Arc::new((Mutex::new(Lines::default()), Condvar::new())));
        let w2 = w.clone();
        std::thread::spawn(move || {
            let reader = BufReader::new(stream);
            for line in reader.lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("SMTPD_TEST_LOG").is_some() {
                    eprintln!("[smtpd] {line}");
                }
                let (m, cv) = &*w2.0;
                m.lock().unwrap().lines.push(line);
                cv.notify_all();
            }
            let (m, cv) = &*w2.0;
            m.lock().unwrap().closed = true;
            cv.notify_all();
        });
        w
    }

    /// Waits until a line contains `needle`; returns it.
    pub fn wait_for(&self, needle: &str) -> String {
        let (m, cv) = &*self.0;
        let deadline = Instant::now() + WAIT;
        let mut g = m.lock().unwrap();
        loop {
            if let Some(l) = g.lines.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            let now = Instant::now();
            assert!(
                now < deadline && !g.closed,
                "smtpd never logged {needle:?}; its output:\n{}",
                g.lines.join("\n")
            );
            g = cv.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    /// Waits until `n` lines contain `needle`.
    pub fn wait_count(&self, needle: &str, n: usize) {
        let (m, cv) = &*self.0;
        let deadline = Instant::now() + WAIT;
        let mut g = m.lock().unwrap();
        loop {
            if g.lines.iter().filter(|l| l.contains(needle)).count() >= n {
                return;
            }
            let now = Instant::now();
            assert!(
                now < deadline && !g.closed,
                "smtpd never logged {n} × {needle:?}; its output:\n{}",
                g.lines.join("\n")
            );
            g = cv.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    pub fn all(&self) -> String {
        self.0.0.lock().unwrap().lines.join("\n")
    }

    pub fn count(&self, needle: &str) -> usize {
        self.0
            .0
            .lock()
            .unwrap()
            .lines
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }
}
