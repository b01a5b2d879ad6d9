//! Captures the tracing output of the current thread into a buffer, for tests that scan the
//! agent's log lines (e.g. for a token that must never appear).
#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing::subscriber::DefaultGuard;
use tracing_subscriber::fmt::MakeWriter;

/// Everything logged on this thread while it lives (use a current-thread runtime).
pub struct LogCapture {
    buffer: Arc<Mutex<Vec<u8>>>,
    _guard: DefaultGuard,
}

#[derive(Clone)]
struct Writer(Arc<Mutex<Vec<u8>>>);

impl Write for Writer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Writer {
    type Writer = Writer;
    fn make_writer(&'a self) -> Writer {
        self.clone()
    }
}

impl LogCapture {
    pub fn install() -> LogCapture {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::fmt()
            .with_writer(Writer(Arc::clone(&buffer)))
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        LogCapture {
            buffer,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }
}

/// Fails if `token`, or any 8-character piece of it, appears in `text`.
pub fn assert_token_absent(token: &str, text: &str) {
    assert!(
        !text.is_empty() || token.is_empty(),
        "nothing captured to scan"
    );
    let chars: Vec<char> = token.chars().collect();
    for piece in chars.windows(8.min(chars.len())) {
        let piece: String = piece.iter().collect();
        assert!(
            !text.contains(&piece),
            "token piece {piece:?} leaked in:\n{text}"
        );
    }
}
