//! Read-ahead for a run's point reads: a run that reads keys in order (the
//! nightly's compliance pass reads every `app/` record after listing them;
//! the awards pass walks `compliance/` and `app/` side by side) gets each
//! next record from rows already fetched, instead of one index search per
//! read.
//!
//! A miss fetches the committed rows from the key on, in key order: one row
//! at first, four times more each time a stream is read on past what it
//! fetched, back to one when a fetch was wasted (sparse or random reads
//! pay at most one small wasted fetch in two). What a stream holds is
//! every committed key in its range, so a key inside the range that is not
//! there does not exist. A run reads only datasets it holds a lock on, and
//! nobody commits to those while it runs, so fetched rows stay true for
//! the run's whole life.

use std::collections::VecDeque;

/// Key ranges followed at once (the awards pass follows two).
const STREAMS: usize = 4;
/// Most rows one fetch asks for.
pub const MAX_WINDOW: usize = 256;
/// A fetch stops taking rows once their values hold this many bytes.
pub const MAX_BYTES: usize = 256 << 10;

/// Rows fetched from `key` on, in key order, and whether they reach the
/// dataset's last key (fewer rows than asked for, not cut by bytes).
pub type Fetched = (Vec<(String, Vec<u8>)>, bool);

/// One key range of one dataset, read in order.
struct Stream {
    dataset: String,
    /// Keys up to here are behind the stream (this one too once `taken`).
    from: String,
    taken: bool,
    /// The last key the range covers; `None`: the dataset's end.
    to: Option<String>,
    /// The committed rows of the range still ahead, in key order.
    rows: VecDeque<(String, Vec<u8>)>,
    window: usize,
    /// Read past the key its fetch was made for.
    hit: bool,
}

impl Stream {
    fn covers(&self, dataset: &str, key: &str) -> bool {
        self.dataset == dataset
            && (key > self.from.as_str() || (key == self.from && !self.taken))
            && self.to.as_deref().is_none_or(|to| key <= to)
    }

    /// Whether `key` lies just past this stream's range.
    fn continued_by(&self, dataset: &str, key: &str) -> bool {
        self.dataset == dataset && self.to.as_deref().is_some_and(|to| key > to)
    }

    /// The value of `key` (covered by the stream); rows before it go.
    fn take(&mut self, key: &str) -> Option<Vec<u8>> {
        while self.rows.front().is_some_and(|(k, _)| k.as_str() < key) {
            self.rows.pop_front();
        }
        self.from.clear();
        self.from.push_str(key);
        self.taken = true;
        match self.rows.front() {
            Some((k, _)) if k == key => self.rows.pop_front().map(|(_, v)| v),
            _ => None,
        }
    }
}

/// The streams of one run's reads, most recently used first.
#[derive(Default)]
pub struct ReadAhead {
    streams: Vec<Stream>,
}

impl ReadAhead {
    /// The committed value of `key` in `dataset`: from a stream, or from
    /// `fetch(window)`, which returns at most `window` rows from `key` on.
    pub fn read<E>(
        &mut self,
        dataset: &str,
        key: &str,
        fetch: impl FnOnce(usize) -> Result<Fetched, E>,
    ) -> Result<Option<Vec<u8>>, E> {
        if let Some(at) = self.streams.iter().position(|s| s.covers(dataset, key)) {
            self.streams[..=at].rotate_right(1);
            let stream = &mut self.streams[0];
            stream.hit = true;
            return Ok(stream.take(key));
        }
        let next = self
            .streams
            .iter()
            .position(|s| s.continued_by(dataset, key));
        let window = match next.map(|at| &self.streams[at]) {
            Some(s) if s.hit || s.window == 1 => (s.window * 4).min(MAX_WINDOW),
            _ => 1,
        };
        let (rows, to_end) = fetch(window)?;
        let to = match (to_end, rows.last()) {
            (false, Some((last, _))) => Some(last.clone()),
            _ => None,
        };
        let stream = Stream {
            dataset: dataset.to_string(),
            from: key.to_string(),
            taken: false,
            to,
            rows: rows.into(),
            window,
            hit: false,
        };
        match next {
            Some(at) => {
                self.streams.remove(at);
            }
            None if self.streams.len() == STREAMS => {
                self.streams.pop();
            }
            None => {}
        }
        self.streams.insert(0, stream);
        Ok(self.streams[0].take(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A dataset and a count of the rows fetched from it.
    struct Source {
        rows: BTreeMap<String, Vec<u8>>,
        fetched: usize,
    }

    impl Source {
        fn fetch(&mut self, key: &str, window: usize) -> Result<Fetched, ()> {
            let rows: Vec<_> = self
                .rows
                .range(key.to_string()..)
                .take(window)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            self.fetched += rows.len();
            let to_end = rows.len() < window;
            Ok((rows, to_end))
        }
    }

    fn read(ahead: &mut ReadAhead, src: &mut Source, d: &str, key: &str) -> Option<Vec<u8>> {
        ahead.read(d, key, |w| src.fetch(key, w)).unwrap()
    }

    /// Every read answers what the dataset holds, in order, out of order,
    /// repeated, missing keys, two interleaved walks; a walk in order
    /// fetches each row about once, random reads a few rows each.
    #[test]
    fn reads_answer_what_the_dataset_holds_whatever_the_order() {
        let mut src = Source {
            rows: (0..2000)
                .filter(|i| i % 3 != 0)
                .flat_map(|i| {
                    [
                        (format!("a/{i:05}"), format!("a{i}").into_bytes()),
                        (format!("c/{i:05}"), format!("c{i}").into_bytes()),
                    ]
                })
                .collect(),
            fetched: 0,
        };
        let truth = src.rows.clone();
        let mut ahead = ReadAhead::default();
        // Two walks side by side, every key asked for, present or not.
        for i in 0..2000 {
            for key in [format!("c/{i:05}"), format!("a/{i:05}")] {
                assert_eq!(
                    read(&mut ahead, &mut src, "d", &key),
                    truth.get(&key).cloned()
                );
            }
        }
        // Each row about once; each walk wastes at most its last window
        // (the `a/` walk's last one reads into `c/`).
        let most = truth.len() + 2 * MAX_WINDOW;
        assert!(
            src.fetched <= most,
            "{} fetched, {most} at most",
            src.fetched
        );
        // Backwards, and repeated.
        for i in (0..50).rev() {
            let key = format!("a/{i:05}");
            for _ in 0..2 {
                assert_eq!(
                    read(&mut ahead, &mut src, "d", &key),
                    truth.get(&key).cloned()
                );
            }
        }
        // Random reads cost a few rows each, not a window each.
        let mut rng = fastrand::Rng::with_seed(3);
        let before = src.fetched;
        for _ in 0..1000 {
            let key = format!("a/{:05}", rng.usize(..2000));
            assert_eq!(
                read(&mut ahead, &mut src, "d", &key),
                truth.get(&key).cloned()
            );
        }
        assert!(src.fetched - before < 4000, "{}", src.fetched - before);
    }
}
