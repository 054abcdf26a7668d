//! The write-ahead spool: every accepted record is on local disk (fsynced) before its 200.
//!
//! Records are appended to the open segment file by one writer thread. The thread takes every
//! record queued while it was busy, writes them, calls `fdatasync` once, and only then answers
//! their handlers (group commit: one sync per group, not per request). A segment is sealed
//! when it reaches `segment_max_bytes` or `segment_max_age`, and the sink ships sealed segments
//! and deletes them once the sink has them. On start, segments left by a crash are recovered
//! (a torn last frame is cut off; it was never acknowledged) and shipped.
//!
//! Segment files: `<sequence>-<created_ms>.open` while written, `.seg` once sealed. Frames:
//! `u32 payload length | u32 CRC-32 of payload | payload`, payload = `u16 project length |
//! project id | NDJSON line`.

use std::{
    fs::{File, OpenOptions},
    io::{BufReader, Read, Write},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc as std_mpsc,
    },
    time::{Duration, Instant},
};

use tokio::sync::{mpsc, oneshot};

#[derive(Debug, Clone)]
pub struct SpoolSettings {
    pub directory: PathBuf,
    /// Appends are refused (503) while the spool holds this many bytes.
    pub max_bytes: u64,
    pub segment_max_bytes: u64,
    pub segment_max_age: Duration,
}

/// Why a record was not accepted. Each is temporary: the client should retry.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum SpoolError {
    #[error("the spool is full ({bytes} bytes waiting for the sink)")]
    Full { bytes: u64 },
    #[error("the spool cannot write to disk: {0}")]
    Disk(String),
    #[error("the spool is shutting down")]
    ShuttingDown,
}

/// A sealed segment, ready to ship.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedSegment {
    pub path: PathBuf,
    pub sequence: u64,
    pub created_ms: i64,
}

struct Append {
    project_id: String,
    line: Vec<u8>,
    acknowledge: oneshot::Sender<Result<(), SpoolError>>,
}

/// Shared counters, read by `/health` and `/metrics`.
#[derive(Debug, Default)]
pub struct SpoolStats {
    pub bytes: AtomicU64,
    pub sealed_segments: AtomicU64,
    pub disk_failed: AtomicBool,
    /// The last attempt to ship a segment failed (the sink is down or refusing).
    pub sink_failing: AtomicBool,
}

impl SpoolStats {
    /// Publishes the spool's depth to `/metrics`.
    pub fn publish(&self) {
        metrics::gauge!("clickstream_ingest_spool_bytes").set(self.bytes.load(Ordering::Relaxed) as f64);
        metrics::gauge!("clickstream_ingest_spool_segments").set(self.sealed_segments.load(Ordering::Relaxed) as f64);
    }
}

/// The appending side, cloned into every handler.
#[derive(Clone)]
pub struct Spool {
    appends: std_mpsc::Sender<Append>,
    pub stats: Arc<SpoolStats>,
    max_bytes: u64,
}

impl Spool {
    /// Opens the spool: recovers what a previous run left, then starts the writer thread.
    /// Returns the spool, the sealed segments to ship (oldest first, recovered ones included),
    /// and the writer thread (it ends when every `Spool` clone is dropped, after sealing).
    pub fn open(settings: SpoolSettings) -> std::io::Result<(Spool, mpsc::UnboundedReceiver<SealedSegment>, std::thread::JoinHandle<()>)> {
        std::fs::create_dir_all(&settings.directory)?;
        let stats = Arc::new(SpoolStats::default());
        let (sealed_sender, sealed_receiver) = mpsc::unbounded_channel();
        let mut next_sequence = 0;
        for segment in recover_segments(&settings.directory)? {
            next_sequence = next_sequence.max(segment.sequence + 1);
            stats.bytes.fetch_add(std::fs::metadata(&segment.path)?.len(), Ordering::Relaxed);
            stats.sealed_segments.fetch_add(1, Ordering::Relaxed);
            let _ = sealed_sender.send(segment);
        }
        let (appends, receiver) = std_mpsc::channel();
        let writer_stats = stats.clone();
        let max_bytes = settings.max_bytes;
        let writer = std::thread::Builder::new()
            .name("spool-writer".into())
            .spawn(move || Writer { settings, stats: writer_stats, sealed: sealed_sender, next_sequence, open: None }.run(receiver))?;
        Ok((Spool { appends, stats, max_bytes }, sealed_receiver, writer))
    }

    /// Appends a record and waits until it is on disk.
    pub async fn append(&self, project_id: &str, line: Vec<u8>) -> Result<(), SpoolError> {
        let bytes = self.stats.bytes.load(Ordering::Relaxed);
        if bytes >= self.max_bytes {
            return Err(SpoolError::Full { bytes });
        }
        let (acknowledge, outcome) = oneshot::channel();
        self.appends.send(Append { project_id: project_id.to_string(), line, acknowledge }).map_err(|_| SpoolError::ShuttingDown)?;
        outcome.await.map_err(|_| SpoolError::ShuttingDown)?
    }
}

struct OpenSegment {
    file: File,
    path: PathBuf,
    sequence: u64,
    created_ms: i64,
    opened: Instant,
    bytes: u64,
}

struct Writer {
    settings: SpoolSettings,
    stats: Arc<SpoolStats>,
    sealed: mpsc::UnboundedSender<SealedSegment>,
    next_sequence: u64,
    open: Option<OpenSegment>,
}

impl Writer {
    fn run(mut self, receiver: std_mpsc::Receiver<Append>) {
        loop {
            let timeout = match &self.open {
                Some(segment) => self.settings.segment_max_age.saturating_sub(segment.opened.elapsed()),
                None => Duration::from_secs(3600),
            };
            let first = match receiver.recv_timeout(timeout) {
                Ok(append) => append,
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    self.seal_if_due();
                    continue;
                }
                Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut group = vec![first];
            while let Ok(append) = receiver.try_recv() {
                group.push(append);
                if group.len() >= 10_000 {
                    break;
                }
            }
            let outcome = self.write_group(&group).map_err(|error| {
                self.stats.disk_failed.store(true, Ordering::Relaxed);
                tracing::error!(%error, "spool write failed");
                // The segment may hold a partial group: seal it so recovery reads what is whole.
                self.open = None;
                SpoolError::Disk(error.to_string())
            });
            if outcome.is_ok() {
                self.stats.disk_failed.store(false, Ordering::Relaxed);
            }
            for append in group {
                let _ = append.acknowledge.send(outcome.clone());
            }
            self.seal_if_due();
        }
        self.seal();
    }

    fn write_group(&mut self, group: &[Append]) -> std::io::Result<()> {
        let mut buffer = Vec::new();
        for append in group {
            encode_frame(&mut buffer, &append.project_id, &append.line);
        }
        let segment = self.open_segment()?;
        segment.file.write_all(&buffer)?;
        segment.file.sync_data()?;
        segment.bytes += buffer.len() as u64;
        self.stats.bytes.fetch_add(buffer.len() as u64, Ordering::Relaxed);
        self.stats.publish();
        Ok(())
    }

    fn open_segment(&mut self) -> std::io::Result<&mut OpenSegment> {
        if self.open.is_none() {
            let sequence = self.next_sequence;
            self.next_sequence += 1;
            let created_ms = chrono::Utc::now().timestamp_millis();
            let path = self.settings.directory.join(format!("{sequence:020}-{created_ms}.open"));
            let file = OpenOptions::new().create_new(true).append(true).open(&path)?;
            // Make the new file's directory entry durable too.
            File::open(&self.settings.directory)?.sync_all()?;
            self.open = Some(OpenSegment { file, path, sequence, created_ms, opened: Instant::now(), bytes: 0 });
        }
        Ok(self.open.as_mut().expect("just opened"))
    }

    fn seal_if_due(&mut self) {
        let due = self
            .open
            .as_ref()
            .is_some_and(|segment| segment.bytes >= self.settings.segment_max_bytes || segment.opened.elapsed() >= self.settings.segment_max_age);
        if due {
            self.seal();
        }
    }

    fn seal(&mut self) {
        let Some(segment) = self.open.take() else { return };
        if segment.bytes == 0 {
            let _ = std::fs::remove_file(&segment.path);
            return;
        }
        let sealed_path = segment.path.with_extension("seg");
        match std::fs::rename(&segment.path, &sealed_path) {
            Ok(()) => {
                self.stats.sealed_segments.fetch_add(1, Ordering::Relaxed);
                let _ = self.sealed.send(SealedSegment { path: sealed_path, sequence: segment.sequence, created_ms: segment.created_ms });
            }
            // The records are durable in the .open file; the next start recovers it.
            Err(error) => tracing::error!(%error, path = %segment.path.display(), "cannot seal spool segment"),
        }
    }
}

fn encode_frame(buffer: &mut Vec<u8>, project_id: &str, line: &[u8]) {
    let payload_length = 2 + project_id.len() + line.len();
    let start = buffer.len();
    buffer.extend_from_slice(&(payload_length as u32).to_le_bytes());
    buffer.extend_from_slice(&[0; 4]);
    buffer.extend_from_slice(&(project_id.len() as u16).to_le_bytes());
    buffer.extend_from_slice(project_id.as_bytes());
    buffer.extend_from_slice(line);
    let checksum = crc32fast::hash(&buffer[start + 8..]);
    buffer[start + 4..start + 8].copy_from_slice(&checksum.to_le_bytes());
}

/// Calls `record` with each whole frame's project id and NDJSON line, in order; stops at the
/// first torn or corrupt frame and returns how many bytes were whole. It holds one frame at a
/// time, so shipping a segment does not need the segment's size in memory.
pub fn for_each_record(path: &Path, mut record: impl FnMut(&str, &[u8]) -> std::io::Result<()>) -> std::io::Result<u64> {
    let file = File::open(path)?;
    let file_bytes = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut payload = Vec::new();
    let mut whole_bytes = 0u64;
    loop {
        let mut header = [0u8; 8];
        if !read_exactly_or_end(&mut reader, &mut header)? {
            break;
        }
        let length = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as u64;
        let checksum = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
        // A length past the file's end is a torn (or corrupt) frame: do not allocate for it.
        if length < 2 || whole_bytes + 8 + length > file_bytes {
            break;
        }
        payload.resize(length as usize, 0);
        if !read_exactly_or_end(&mut reader, &mut payload)? || crc32fast::hash(&payload) != checksum {
            break;
        }
        let project_length = u16::from_le_bytes([payload[0], payload[1]]) as usize;
        let Some(project) = payload.get(2..2 + project_length) else { break };
        record(&String::from_utf8_lossy(project), &payload[2 + project_length..])?;
        whole_bytes += 8 + length;
    }
    Ok(whole_bytes)
}

/// `read_exact`, except that the end of the file before `buffer` is full gives `false`.
fn read_exactly_or_end(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<bool> {
    match reader.read_exact(buffer) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(error) => Err(error),
    }
}

fn parse_segment_name(path: &Path) -> Option<(u64, i64)> {
    let stem = path.file_stem()?.to_str()?;
    let (sequence, created_ms) = stem.split_once('-')?;
    Some((sequence.parse().ok()?, created_ms.parse().ok()?))
}

/// Seals what a previous run left open (cutting a torn tail) and lists all sealed segments.
fn recover_segments(directory: &Path) -> std::io::Result<Vec<SealedSegment>> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(directory)? {
        let path = entry?.path();
        let Some((sequence, created_ms)) = parse_segment_name(&path) else { continue };
        match path.extension().and_then(|extension| extension.to_str()) {
            Some("open") => {
                let whole_bytes = for_each_record(&path, |_, _| Ok(()))?;
                if whole_bytes == 0 {
                    std::fs::remove_file(&path)?;
                    continue;
                }
                OpenOptions::new().write(true).open(&path)?.set_len(whole_bytes)?;
                let sealed = path.with_extension("seg");
                std::fs::rename(&path, &sealed)?;
                tracing::info!(path = %sealed.display(), "recovered spool segment left open by a previous run");
                segments.push(SealedSegment { path: sealed, sequence, created_ms });
            }
            Some("seg") => segments.push(SealedSegment { path, sequence, created_ms }),
            _ => {}
        }
    }
    segments.sort_by_key(|segment| segment.sequence);
    Ok(segments)
}

/// Deletes a shipped segment and releases its bytes.
pub fn release_segment(stats: &SpoolStats, segment: &SealedSegment) -> std::io::Result<()> {
    let length = std::fs::metadata(&segment.path)?.len();
    std::fs::remove_file(&segment.path)?;
    stats.bytes.fetch_sub(length.min(stats.bytes.load(Ordering::Relaxed)), Ordering::Relaxed);
    stats.sealed_segments.fetch_sub(1, Ordering::Relaxed);
    stats.publish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One record read back from a segment (the shipper streams them; the tests collect them).
    #[derive(Debug, Clone, PartialEq)]
    struct SpooledRecord {
        project_id: String,
        line: Vec<u8>,
    }

    /// Reads the whole frames of a segment; stops at the first torn or corrupt frame and returns
    /// how many bytes were whole.
    fn read_segment(path: &Path) -> std::io::Result<(Vec<SpooledRecord>, u64)> {
        let mut records = Vec::new();
        let whole_bytes = for_each_record(path, |project_id, line| {
            records.push(SpooledRecord { project_id: project_id.to_string(), line: line.to_vec() });
            Ok(())
        })?;
        Ok((records, whole_bytes))
    }

    fn settings(directory: &Path) -> SpoolSettings {
        SpoolSettings { directory: directory.to_path_buf(), max_bytes: 1 << 30, segment_max_bytes: 1 << 20, segment_max_age: Duration::from_secs(3600) }
    }

    #[tokio::test]
    async fn appended_records_come_back_from_the_sealed_segment() {
        let directory = tempfile::tempdir().unwrap();
        let (spool, mut sealed, writer) = Spool::open(settings(directory.path())).unwrap();
        spool.append("a", b"{\"n\":1}".to_vec()).await.unwrap();
        spool.append("b", b"{\"n\":2}".to_vec()).await.unwrap();
        drop(spool);
        writer.join().unwrap();
        let segment = sealed.recv().await.unwrap();
        let (records, _) = read_segment(&segment.path).unwrap();
        assert_eq!(records, vec![
            SpooledRecord { project_id: "a".into(), line: b"{\"n\":1}".to_vec() },
            SpooledRecord { project_id: "b".into(), line: b"{\"n\":2}".to_vec() },
        ]);
    }

    #[tokio::test]
    async fn a_crashed_segment_is_recovered_without_its_torn_tail() {
        let directory = tempfile::tempdir().unwrap();
        let mut bytes = Vec::new();
        encode_frame(&mut bytes, "a", b"one");
        encode_frame(&mut bytes, "a", b"two");
        bytes.extend_from_slice(&[9, 0, 0, 0, 1, 2]); // a frame cut short by the crash
        std::fs::write(directory.path().join("00000000000000000007-1700000000000.open"), &bytes).unwrap();

        let (spool, mut sealed, writer) = Spool::open(settings(directory.path())).unwrap();
        let recovered = sealed.recv().await.unwrap();
        assert_eq!((recovered.sequence, recovered.created_ms), (7, 1_700_000_000_000));
        let (records, whole) = read_segment(&recovered.path).unwrap();
        assert_eq!(records.iter().map(|record| record.line.clone()).collect::<Vec<_>>(), vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(whole, std::fs::metadata(&recovered.path).unwrap().len());
        // New segments continue after the recovered sequence.
        spool.append("a", b"three".to_vec()).await.unwrap();
        drop(spool);
        writer.join().unwrap();
        assert_eq!(sealed.recv().await.unwrap().sequence, 8);
    }

    #[test]
    fn a_frame_longer_than_its_file_ends_the_reading_without_allocating_its_length() {
        let directory = tempfile::tempdir().unwrap();
        let mut bytes = Vec::new();
        encode_frame(&mut bytes, "a", b"one");
        let whole = bytes.len() as u64;
        bytes.extend_from_slice(&u32::MAX.to_le_bytes()); // a corrupt length: 4 GiB
        bytes.extend_from_slice(&[0; 4]);
        bytes.extend_from_slice(b"tail");
        let path = directory.path().join("00000000000000000001-1700000000000.seg");
        std::fs::write(&path, &bytes).unwrap();
        let mut lines = Vec::new();
        let whole_bytes = for_each_record(&path, |project_id, line| {
            lines.push((project_id.to_string(), line.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(whole_bytes, whole);
        assert_eq!(lines, vec![("a".to_string(), b"one".to_vec())]);
    }

    #[tokio::test]
    async fn a_full_spool_refuses_appends() {
        let directory = tempfile::tempdir().unwrap();
        let (spool, _sealed, _writer) = Spool::open(SpoolSettings { max_bytes: 10, ..settings(directory.path()) }).unwrap();
        spool.append("a", vec![b'x'; 20]).await.unwrap();
        assert!(matches!(spool.append("a", b"y".to_vec()).await, Err(SpoolError::Full { .. })));
    }

    #[tokio::test]
    async fn segments_are_sealed_by_size_and_age() {
        let directory = tempfile::tempdir().unwrap();
        let (spool, mut sealed, _writer) =
            Spool::open(SpoolSettings { segment_max_bytes: 50, segment_max_age: Duration::from_millis(200), ..settings(directory.path()) }).unwrap();
        spool.append("a", vec![b'x'; 60]).await.unwrap();
        let by_size = tokio::time::timeout(Duration::from_secs(1), sealed.recv()).await.unwrap().unwrap();
        spool.append("a", b"small".to_vec()).await.unwrap();
        let by_age = tokio::time::timeout(Duration::from_secs(2), sealed.recv()).await.unwrap().unwrap();
        assert!(by_age.sequence > by_size.sequence);
        release_segment(&spool.stats, &by_size).unwrap();
        release_segment(&spool.stats, &by_age).unwrap();
        assert_eq!(spool.stats.bytes.load(Ordering::Relaxed), 0);
    }
}
