//! Log output in batches: request threads append formatted lines to a
//! shared buffer, and one background thread writes the buffer out every
//! few milliseconds.
//!
//! Under load this turns one `write(2)` per request into one per interval,
//! and a request thread never waits for the terminal, a pipe or the disk.
//! tracing-appender's non-blocking writer was measured first: it hands each
//! line to its thread through a channel and wakes that thread for every
//! line or two, which cost more than the writes it saved.
//!
//! Nothing is dropped: when the writer falls far behind, the thread adding
//! a line writes the buffer out itself.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait in the buffer.
const FLUSH_INTERVAL: Duration = Duration::from_millis(20);

/// Past this many buffered bytes the writer thread is woken early.
const WAKE_AT: usize = 64 * 1024;

/// Past this many buffered bytes the thread adding a line writes the buffer
/// out itself (bounding memory when the output is slower than the logs).
const WRITE_THROUGH_AT: usize = 4 * 1024 * 1024;

struct Shared<W> {
    state: Mutex<State>,
    wake: Condvar,
    output: Mutex<W>,
}

#[derive(Default)]
struct State {
    pending: Vec<u8>,
    stopping: bool,
}

/// Where formatted lines go: clone it freely, every clone shares one buffer.
pub struct BatchWriter<W: Write + Send + 'static> {
    shared: Arc<Shared<W>>,
}

impl<W: Write + Send + 'static> Clone for BatchWriter<W> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Stops the writer thread and writes out what is buffered when dropped:
/// hold it until the program ends.
#[must_use = "dropping the guard stops the log writer"]
pub struct FlushGuard<W: Write + Send + 'static> {
    shared: Arc<Shared<W>>,
    thread: Option<JoinHandle<()>>,
}

/// A mutex whose holder panicked still guards valid bytes: keep logging.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<W: Write + Send + 'static> BatchWriter<W> {
    /// Start the writer thread for `output`.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn start(output: W) -> io::Result<(Self, FlushGuard<W>)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            output: Mutex::new(output),
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("flexbridge-log".to_owned())
            .spawn(move || write_batches(&worker))?;
        Ok((
            Self {
                shared: Arc::clone(&shared),
            },
            FlushGuard {
                shared,
                thread: Some(thread),
            },
        ))
    }
}

/// The writer thread: every [`FLUSH_INTERVAL`] (or sooner when woken), take
/// the buffer and write it out, until stopped.
fn write_batches<W: Write>(shared: &Shared<W>) {
    let mut batch = Vec::new();
    loop {
        let state = lock(&shared.state);
        let (mut state, _) = shared
            .wake
            .wait_timeout_while(state, FLUSH_INTERVAL, |s| {
                !s.stopping && s.pending.len() < WAKE_AT
            })
            .unwrap_or_else(PoisonError::into_inner);
        std::mem::swap(&mut state.pending, &mut batch);
        let stopping = state.stopping;
        // The output is taken before the buffer is released, so a line
        // written through by a request thread cannot overtake this batch.
        let mut output = lock(&shared.output);
        drop(state);
        write_out(&mut *output, &batch);
        drop(output);
        batch.clear();
        if stopping {
            return;
        }
    }
}

/// Write `bytes` to the output; errors are reported on stderr, since there
/// is nowhere else to log them.
fn write_out<W: Write>(output: &mut W, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    if let Err(e) = output.write_all(bytes).and_then(|()| output.flush()) {
        eprintln!("flexbridge: cannot write logs: {e}");
    }
}

impl<W: Write + Send + 'static> Write for BatchWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut state = lock(&self.shared.state);
        state.pending.extend_from_slice(bytes);
        let buffered = state.pending.len();
        if buffered >= WRITE_THROUGH_AT {
            // The buffer stays locked while it is written, so lines stay in order.
            let batch = std::mem::take(&mut state.pending);
            write_out(&mut *lock(&self.shared.output), &batch);
        } else if buffered >= WAKE_AT {
            self.shared.wake.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Lines are written by the writer thread; flushing here would undo
        // the batching. The guard writes out everything at the end.
        Ok(())
    }
}

impl<'a, W: Write + Send + 'static> MakeWriter<'a> for BatchWriter<W> {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl<W: Write + Send + 'static> Drop for FlushGuard<W> {
    fn drop(&mut self) {
        lock(&self.shared.state).stopping = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // Lines added after the thread's last batch.
        let mut state = lock(&self.shared.state);
        let rest = std::mem::take(&mut state.pending);
        write_out(&mut *lock(&self.shared.output), &rest);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Instant;

    use super::*;

    #[derive(Clone, Default)]
    struct Sink {
        bytes: Arc<Mutex<Vec<u8>>>,
        writes: Arc<Mutex<usize>>,
    }

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.bytes.lock().unwrap().extend_from_slice(bytes);
            *self.writes.lock().unwrap() += 1;
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// An output whose first write waits until the test releases it, as a
    /// stalled pipe or terminal would.
    struct Stalled {
        entered: mpsc::SyncSender<()>,
        release: mpsc::Receiver<()>,
        stalled: bool,
        sink: Sink,
    }

    impl Write for Stalled {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            if !self.stalled {
                self.stalled = true;
                let _ = self.entered.send(());
                let _ = self.release.recv();
            }
            self.sink.write(bytes)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn lines(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("line {i:05}\n")).collect()
    }

    #[test]
    fn every_line_arrives_in_order_in_few_writes_and_the_guard_flushes_the_rest() {
        let sink = Sink::default();
        let (writer, guard) = BatchWriter::start(sink.clone()).unwrap();
        let sent = lines(10_000);
        for line in &sent {
            writer.make_writer().write_all(line.as_bytes()).unwrap();
        }
        drop(guard);
        let written = String::from_utf8(sink.bytes.lock().unwrap().clone()).unwrap();
        assert_eq!(written, sent.concat());
        let writes = *sink.writes.lock().unwrap();
        assert!(writes <= 1_000, "{writes} writes for 10,000 lines");
    }

    #[test]
    fn lines_are_written_without_waiting_for_the_guard() {
        let sink = Sink::default();
        let (writer, _guard) = BatchWriter::start(sink.clone()).unwrap();
        writer.make_writer().write_all(b"soon\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while sink.bytes.lock().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "the line was never written");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(sink.bytes.lock().unwrap().as_slice(), b"soon\n");
    }

    /// While the output is stalled, a thread adding a line never waits for
    /// it until 4 MiB are buffered; the line that reaches 4 MiB writes the
    /// buffer out itself, so memory stays bounded. Nothing is lost.
    #[test]
    fn a_stalled_output_holds_up_no_line_until_4_mib_are_buffered() {
        let (entered, stalled) = mpsc::sync_channel(1);
        let (release, released) = mpsc::channel();
        let sink = Sink::default();
        let output = Stalled {
            entered,
            release: released,
            stalled: false,
            sink: sink.clone(),
        };
        let (writer, guard) = BatchWriter::start(output).unwrap();
        writer.make_writer().write_all(b"first\n").unwrap();
        stalled
            .recv_timeout(Duration::from_secs(10))
            .expect("the writer thread takes the first line");

        // 1 KiB lines: the 4,096th brings the buffer to exactly 4 MiB.
        const MIB_4: usize = 4 << 20;
        let line = format!("{}\n", "x".repeat(1023));
        let add = |count: usize| {
            let (writer, line) = (writer.clone(), line.clone());
            let (done, finished) = mpsc::channel();
            std::thread::spawn(move || {
                for _ in 0..count {
                    writer.make_writer().write_all(line.as_bytes()).unwrap();
                }
                let _ = done.send(());
            });
            finished
        };
        let below = add(MIB_4 / line.len() - 1).recv_timeout(Duration::from_secs(10));
        let at = add(1);
        let waited = at.recv_timeout(Duration::from_millis(200));
        release.send(()).unwrap();
        at.recv_timeout(Duration::from_secs(10))
            .expect("the line is added once the output moves");
        drop(guard);

        assert!(below.is_ok(), "a line below 4 MiB waited for the output");
        assert!(
            waited.is_err(),
            "the line reaching 4 MiB did not write it out"
        );
        let written = sink.bytes.lock().unwrap().clone();
        assert_eq!(written.len(), "first\n".len() + MIB_4);
        assert!(written.starts_with(b"first\n"));
    }

    #[test]
    fn lines_from_many_threads_are_whole_and_none_is_lost() {
        let sink = Sink::default();
        let (writer, guard) = BatchWriter::start(sink.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        let line = format!("thread {t} line {i:04} {}\n", "x".repeat(1000));
                        writer.make_writer().write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let written = String::from_utf8(sink.bytes.lock().unwrap().clone()).unwrap();
        let mut got: Vec<&str> = written.lines().collect();
        assert_eq!(got.len(), 20_000);
        got.sort_unstable();
        got.dedup();
        assert_eq!(got.len(), 20_000, "a line was lost, repeated or torn");
        assert!(got.iter().all(|line| line.ends_with(&"x".repeat(1000))));
    }
}
