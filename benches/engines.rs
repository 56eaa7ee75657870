//! Micro-benchmarks of the sans-IO engines (`cargo bench --bench engines`): SMTP command parsing
//! (commands/s) and DATA scanning with dot-unstuffing and line-end checks (bytes/s), the two
//! things every octet of a session goes through.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smtpd::proto::smtp::command::parse;
use smtpd::proto::smtp::data::DataReader;
use smtpd::proto::smtp::session::{Policy, SmtpSession};

const COMMANDS: &[&[u8]] = &[
    b"EHLO client.example.org",
    b"MAIL FROM:<someone@example.org> SIZE=12345 BODY=8BITMIME",
    b"RCPT TO:<postmaster@example.test>",
    b"DATA",
    b"RSET",
    b"NOOP",
    b"QUIT",
];

fn commands(c: &mut Criterion) {
    let mut g = c.benchmark_group("smtp command parse");
    g.throughput(Throughput::Elements(COMMANDS.len() as u64));
    g.bench_function("7 commands", |b| {
        b.iter(|| {
            for line in COMMANDS {
                let _ = black_box(parse(black_box(line)));
            }
        })
    });
    g.finish();

    // A whole pipelined transaction through the session engine (no I/O), replies included.
    let policy = Arc::new(Policy::example("mx.example.test", &["example.test"]));
    let input =
        b"EHLO c.example.org\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n";
    let mut g = c.benchmark_group("smtp session");
    g.throughput(Throughput::Elements(4));
    g.bench_function("EHLO MAIL RCPT DATA", |b| {
        b.iter(|| {
            let mut s = SmtpSession::new(Arc::clone(&policy));
            black_box(s.feed(black_box(input)));
        })
    });
    g.finish();
}

/// A message of 76-octet lines with some dot-stuffed lines, ended by CRLF.CRLF.
fn message(size: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(size + 80);
    let mut i = 0;
    while m.len() < size {
        if i % 20 == 0 {
            m.extend_from_slice(
                b"..a line that starts with a dot, stuffed by the client.........\r\n",
            );
        } else {
            m.extend_from_slice(
                b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-+\r\n",
            );
        }
        i += 1;
    }
    m.extend_from_slice(b".\r\n");
    m
}

fn data(c: &mut Criterion) {
    let mut g = c.benchmark_group("smtp DATA scan");
    for (name, size) in [
        ("1 KiB", 1024),
        ("100 KiB", 100 * 1024),
        ("10 MiB", 10 << 20),
    ] {
        let msg = message(size);
        let mut out = Vec::with_capacity(msg.len());
        g.throughput(Throughput::Bytes(msg.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                let mut r = DataReader::new(1000);
                // 64 KiB reads, as the driver does.
                for chunk in msg.chunks(64 * 1024) {
                    black_box(r.feed(chunk, &mut out));
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, commands, data);
criterion_main!(benches);
