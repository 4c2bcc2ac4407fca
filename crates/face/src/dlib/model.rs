//! The model file: dlib's serialisation (variable-length integers, its float encoding, matrices)
//! read into the flat arrays of [`ShapePredictor`], with the split nodes packed in 32 bits and
//! the 65 MB leaf table parsed into huge-page-backed memory.

use super::*;

/// One split node in 32 bits: feature indices in bits 0–10 and 11–21, the threshold as a signed
/// integer in bits 22–31.
///
/// Feature pixels are grey levels 0–255, so the difference `d` a split tests is an integer in
/// −255..=255, and for an integer `d`, `d > thresh` ⟺ `d > floor(thresh)`; that floor, clamped to
/// −256..=255 (NaN → 255: never taken, as dlib's `>` is false on NaN), decides every comparison
/// as dlib's f32 test does. Half the bytes of (u16, u16, f32): every face walks all 7,500 trees,
/// whose splits (450 KB instead of 900 KB) stream from L3; the walk measured a quarter faster.
/// Models with more than 2,048 feature pixels per cascade are refused at load (dlib's 68-point
/// model has 500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Split(u32);

impl Split {
    /// Largest feature index a split can hold.
    pub(super) const MAX_FEATURE: u64 = (1 << 11) - 1;

    /// Packs a split; the indices must be at most [`Split::MAX_FEATURE`].
    pub(super) fn new(idx1: u16, idx2: u16, thresh: f32) -> Split {
        debug_assert!(u64::from(idx1.max(idx2)) <= Split::MAX_FEATURE);
        // `as` would map NaN to 0 (a split taken by any positive difference), hence apart.
        let t = if thresh.is_nan() {
            255
        } else {
            (thresh.floor() as i32).clamp(-256, 255)
        };
        Split(u32::from(idx1) | u32::from(idx2) << 11 | (t as u32) << 22)
    }

    #[inline(always)]
    pub(super) fn idx1(self) -> usize {
        (self.0 & 0x7ff) as usize
    }

    #[inline(always)]
    pub(super) fn idx2(self) -> usize {
        (self.0 >> 11 & 0x7ff) as usize
    }

    /// The threshold's floor, sign-extended from 10 bits.
    #[inline(always)]
    pub(super) fn thresh(self) -> i32 {
        self.0 as i32 >> 22
    }
}

/// Byte reader of dlib's serialisation format with offsets for error messages.
/// Where a [`DlibReader`]'s bytes come from: a slice, or a file read forward in windows of
/// [`FILE_WINDOW`] bytes, so that loading the 100 MB model never holds the file whole beside
/// the model it becomes (that pair was the peak memory of a FER2013 build).
pub(super) enum ModelBytes<'a> {
    Slice(&'a [u8]),
    File {
        file: std::fs::File,
        /// The bytes from offset `start` on that have been read and not yet passed.
        window: Vec<u8>,
        start: usize,
        /// The file's length when it was opened.
        len: u64,
        /// The read error that ended the file early, for the error message.
        read_error: Option<String>,
    },
}

/// Bytes read from a model file at a time.
const FILE_WINDOW: usize = 1 << 20;

impl ModelBytes<'_> {
    /// The `n` bytes at `at`, `None` past the end (or, for a file, after a read error). A file
    /// is read forward only: `at` never lies before the last call's `at`.
    #[inline(always)]
    fn get(&mut self, at: usize, n: usize) -> Option<&[u8]> {
        // The common case, kept small enough to inline into every integer read.
        let in_window = match self {
            ModelBytes::Slice(_) => true,
            ModelBytes::File { window, start, .. } => {
                let off = at.wrapping_sub(*start);
                off <= window.len() && n <= window.len() - off
            }
        };
        if !in_window {
            return self.refill(at, n);
        }
        match self {
            ModelBytes::Slice(b) => b.get(at..at.checked_add(n)?),
            ModelBytes::File { window, start, .. } => window.get(at - *start..at - *start + n),
        }
    }

    /// [`Self::get`] past the window's end: drops the bytes before `at` and reads until `n`
    /// bytes from `at` are in the window.
    #[cold]
    #[inline(never)]
    fn refill(&mut self, at: usize, n: usize) -> Option<&[u8]> {
        use std::io::Read;
        let ModelBytes::File {
            file,
            window,
            start,
            read_error,
            ..
        } = self
        else {
            return None;
        };
        if at < *start || at > *start + window.len() {
            return None;
        }
        window.drain(..at - *start);
        *start = at;
        while window.len() < n {
            let have = window.len();
            window.resize(have + FILE_WINDOW.max(n), 0);
            let got = match file.read(&mut window[have..]) {
                Ok(got) => got,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
                Err(e) => {
                    *read_error = Some(e.to_string());
                    window.truncate(have);
                    return None;
                }
            };
            window.truncate(have + got);
            if got == 0 && window.len() < n {
                return None;
            }
        }
        window.get(..n)
    }

    /// The whole input's length in bytes.
    fn len(&self) -> u64 {
        match self {
            ModelBytes::Slice(b) => b.len() as u64,
            ModelBytes::File { len, .. } => *len,
        }
    }
}

pub(super) struct DlibReader<'a> {
    pub(super) bytes: ModelBytes<'a>,
    pub(super) at: usize,
    pub(super) file: &'a Path,
}

impl<'a> DlibReader<'a> {
    pub(super) fn err(&self, offset: usize, reason: impl Into<String>) -> FaceError {
        let mut reason = reason.into();
        if let ModelBytes::File {
            read_error: Some(e),
            ..
        } = &self.bytes
        {
            reason = format!("{reason} (read error: {e})");
        }
        FaceError::DlibFormat {
            file: self.file.to_path_buf(),
            offset: offset as u64,
            reason,
        }
    }

    #[inline]
    pub(super) fn byte(&mut self) -> Result<u8> {
        let b = match self.bytes.get(self.at, 1) {
            Some(b) => b[0],
            None => return Err(self.err(self.at, "unexpected end of file")),
        };
        self.at += 1;
        Ok(b)
    }

    #[inline]
    pub(super) fn magnitude(&mut self, n: usize, start: usize) -> Result<u64> {
        let mut v = 0u64;
        match self.bytes.get(self.at, n) {
            Some(slice) => {
                for (i, b) in slice.iter().enumerate() {
                    v |= (*b as u64) << (8 * i);
                }
            }
            None => return Err(self.err(start, "unexpected end of file inside an integer")),
        }
        self.at += n;
        Ok(v)
    }

    /// Signed integer of at most `max_bytes` bytes.
    #[inline]
    pub(super) fn signed(&mut self, max_bytes: usize) -> Result<i64> {
        let start = self.at;
        let c = self.byte()?;
        let n = (c & 0x0f) as usize;
        if n == 0 || n > max_bytes {
            return Err(self.err(
                start,
                format!("integer control byte {c:#04x} gives {n} bytes (1..={max_bytes} allowed)"),
            ));
        }
        let v = self.magnitude(n, start)?;
        if v > i64::MAX as u64 {
            return Err(self.err(start, "integer overflows i64"));
        }
        Ok(if c & 0x80 != 0 { -(v as i64) } else { v as i64 })
    }

    /// Unsigned integer of at most `max_bytes` bytes.
    #[inline]
    pub(super) fn unsigned(&mut self, max_bytes: usize) -> Result<u64> {
        let start = self.at;
        let c = self.byte()? & 0x8f;
        let n = c as usize;
        if n == 0 || n > max_bytes {
            return Err(self.err(
                start,
                format!("unsigned control byte {c:#04x} is not 1..={max_bytes} bytes"),
            ));
        }
        self.magnitude(n, start)
    }

    /// A length prefix, bounded so that a corrupt length cannot make us allocate gigabytes.
    pub(super) fn len(&mut self, max: u64, what: &str) -> Result<usize> {
        let start = self.at;
        let n = self.unsigned(8)?;
        if n > max {
            return Err(self.err(start, format!("{what} length {n} exceeds the limit {max}")));
        }
        Ok(n as usize)
    }

    #[inline]
    pub(super) fn float(&mut self) -> Result<f32> {
        let start = self.at;
        let first = match self.bytes.get(self.at, 1) {
            Some(b) => b[0],
            None => return Err(self.err(self.at, "unexpected end of file")),
        };
        if first & 0x70 != 0 {
            return Err(self.err(start, "float in dlib's old ASCII format is not supported"));
        }
        let mantissa = self.signed(8)?;
        let exponent = self.signed(2)?;
        Ok(match exponent {
            32000 => f32::INFINITY,
            32001 => f32::NEG_INFINITY,
            32002 => f32::NAN,
            e => ((mantissa as f64) * pow2(e as i32)) as f32,
        })
    }

    /// [`Self::column`] appending to `out` (no allocation per leaf: the model has 120,000 leaves).
    pub(super) fn column_into(&mut self, expect_rows: usize, out: &mut Vec<f32>) -> Result<()> {
        let start = self.at;
        let nr = self.signed(8)?.unsigned_abs() as usize;
        let nc = self.signed(8)?.unsigned_abs() as usize;
        if nc != 1 || nr != expect_rows {
            return Err(self.err(
                start,
                format!("expected a column of {expect_rows} rows, found {nr}×{nc}"),
            ));
        }
        for _ in 0..nr {
            out.push(self.float()?);
        }
        Ok(())
    }

    /// `matrix<float,0,1>`: negative row and column counts (new format), then the elements.
    pub(super) fn column(&mut self, expect_rows: Option<usize>) -> Result<Vec<f32>> {
        let start = self.at;
        let nr = self.signed(8)?.unsigned_abs() as usize;
        let nc = self.signed(8)?.unsigned_abs() as usize;
        if nc != 1 || nr > 1_000_000 {
            return Err(self.err(start, format!("expected a column vector, found {nr}×{nc}")));
        }
        if let Some(e) = expect_rows {
            if nr != e {
                return Err(self.err(start, format!("column of {nr} rows, expected {e}")));
            }
        }
        (0..nr).map(|_| self.float()).collect()
    }
}

impl ShapePredictor {
    /// Loads a `.dat` file, read forward in 1 MiB windows (the file is never in memory whole).
    /// Errors name the byte offset of the first malformed value, as [`Self::from_bytes`] does.
    pub fn load(path: &Path) -> Result<ShapePredictor> {
        let io = |e| FaceError::Io {
            path: path.to_path_buf(),
            cause: e,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        Self::parse(
            ModelBytes::File {
                file,
                window: Vec::with_capacity(FILE_WINDOW),
                start: 0,
                len,
                read_error: None,
            },
            path,
        )
    }

    /// Parses the serialised model; `name` is used in error messages.
    ///
    /// # Errors
    /// [`FaceError::DlibFormat`] with the byte offset for a truncated or malformed file, a tree
    /// that is not complete, trees of different depths, anchors that are not landmark indices,
    /// and split feature indices above 2,047 (the packed split's limit; dlib's 68-point model
    /// uses 500 per cascade).
    pub fn from_bytes(bytes: &[u8], name: &Path) -> Result<ShapePredictor> {
        Self::parse(ModelBytes::Slice(bytes), name)
    }

    fn parse(bytes: ModelBytes<'_>, name: &Path) -> Result<ShapePredictor> {
        let total = bytes.len();
        let mut r = DlibReader {
            bytes,
            at: 0,
            file: name,
        };
        let version = r.signed(4)?;
        if version != 1 {
            return Err(r.err(0, format!("shape_predictor version {version}, expected 1")));
        }
        let initial = r.column(None)?;
        if initial.is_empty() || initial.len() % 2 != 0 {
            return Err(r.err(1, format!("initial shape has {} values", initial.len())));
        }
        let dims = initial.len();

        let cascades = r.len(1000, "cascade list")?;
        let mut splits = Vec::new();
        // Every serialised float takes at least two bytes (a mantissa and an exponent byte), so
        // this capacity is never outgrown and the leaves are parsed straight into huge pages;
        // the unused part of the reservation is never touched, so it costs no memory.
        let mut leaves = huge_page_vec(usize::try_from(total / 2).unwrap_or(usize::MAX));
        let mut trees_per = None;
        let mut shape = None;
        for c in 0..cascades {
            let at = r.at;
            let trees = r.len(100_000, "tree list")?;
            if *trees_per.get_or_insert(trees) != trees {
                return Err(r.err(
                    at,
                    format!("cascade {c} has {trees} trees, cascade 0 has {trees_per:?}"),
                ));
            }
            for t in 0..trees {
                let at = r.at;
                let ns = r.len(1 << 16, "split list")?;
                let mut tree_splits = Vec::with_capacity(ns);
                for _ in 0..ns {
                    let at = r.at;
                    let i1 = r.unsigned(8)?;
                    let i2 = r.unsigned(8)?;
                    let thresh = r.float()?;
                    if i1.max(i2) > Split::MAX_FEATURE {
                        return Err(r.err(
                            at,
                            format!(
                                "split feature index {} exceeds {} (more feature pixels per cascade than supported)",
                                i1.max(i2),
                                Split::MAX_FEATURE
                            ),
                        ));
                    }
                    tree_splits.push(Split::new(i1 as u16, i2 as u16, thresh));
                }
                let nl = r.len(1 << 17, "leaf list")?;
                if nl != ns + 1 || !(nl.is_power_of_two()) {
                    return Err(r.err(at, format!("tree {t} of cascade {c}: {ns} splits and {nl} leaves is not a complete binary tree")));
                }
                if *shape.get_or_insert((ns, nl)) != (ns, nl) {
                    return Err(r.err(at, "trees of different depths are not supported"));
                }
                splits.extend(tree_splits);
                for _ in 0..nl {
                    r.column_into(dims, &mut leaves)?;
                }
            }
        }
        let trees = trees_per.unwrap_or(0);
        let (splits_per_tree, leaves_per_tree) = shape.unwrap_or((0, 1));

        let at = r.at;
        let na = r.len(1000, "anchor list")?;
        if na != cascades {
            return Err(r.err(at, format!("{na} anchor lists for {cascades} cascades")));
        }
        let mut anchors = Vec::new();
        let mut features = None;
        for _ in 0..na {
            let at = r.at;
            let n = r.len(1 << 16, "anchor")?;
            if *features.get_or_insert(n) != n {
                return Err(r.err(at, "cascades with different feature counts"));
            }
            for _ in 0..n {
                let at = r.at;
                let a = r.unsigned(8)?;
                if a as usize >= dims / 2 {
                    return Err(r.err(at, format!("anchor {a} is not a landmark index")));
                }
                anchors.push(a as u32);
            }
        }
        let features = features.unwrap_or(0);
        let at = r.at;
        let nd = r.len(1000, "delta list")?;
        if nd != cascades {
            return Err(r.err(at, format!("{nd} delta lists for {cascades} cascades")));
        }
        let (mut delta_x, mut delta_y) = (Vec::new(), Vec::new());
        for _ in 0..nd {
            let at = r.at;
            let n = r.len(1 << 16, "delta")?;
            if n != features {
                return Err(r.err(at, format!("{n} deltas for {features} anchors")));
            }
            for _ in 0..n {
                delta_x.push(r.float()?);
                delta_y.push(r.float()?);
            }
        }
        if let Some(s) = splits
            .iter()
            .find(|s| s.idx1() >= features || s.idx2() >= features)
        {
            return Err(r.err(
                r.at,
                format!(
                    "split uses feature {} / {} of {features}",
                    s.idx1(),
                    s.idx2()
                ),
            ));
        }
        if r.at as u64 != total || r.bytes.get(r.at, 1).is_some() {
            let trailing = total.saturating_sub(r.at as u64).max(1);
            return Err(r.err(r.at, format!("{trailing} trailing bytes after the model")));
        }
        Ok(ShapePredictor {
            initial,
            cascades,
            trees,
            splits_per_tree,
            leaves_per_tree,
            features,
            splits,
            leaves,
            anchors,
            delta_x,
            delta_y,
            avx2: crate::lanes::simd_enabled(),
        })
    }
}

/// An empty vector with room for `capacity` floats, in memory the kernel is asked to back with
/// 2 MB pages (the 65 MB leaf table is parsed into it).
///
/// Every tree of a prediction lands on a different 4 KB page of the table, so with ordinary pages
/// nearly every leaf costs a TLB miss and a page walk (profiled: a third of the prediction time).
/// Transparent huge pages in `madvise` mode, Debian's default, need the hint; where they are off the
/// hint is ignored and nothing else changes. Parsing straight into it, rather than copying the
/// parsed table over, saves a 65 MB copy and the page faults of a second buffer at load.
pub(super) fn huge_page_vec(capacity: usize) -> Vec<f32> {
    let out: Vec<f32> = Vec::with_capacity(capacity);
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = out.as_ptr() as usize;
        let end = start + capacity * std::mem::size_of::<f32>();
        let aligned = start.div_ceil(PAGE) * PAGE;
        if end > aligned + PAGE {
            // SAFETY: the range lies inside `out`'s allocation and is page aligned; MADV_HUGEPAGE
            // only changes how the kernel backs the pages, never their contents.
            unsafe {
                libc::madvise(
                    aligned as *mut libc::c_void,
                    (end - aligned) / PAGE * PAGE,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    out
}

/// 2^e as f64, exactly (subnormal, zero or infinity outside the normal range), built from exponent
/// bits. `powi` is a compiler-rt call, and LLVM hoists it out of any branch, so it ran for each of
/// the model's 16 M floats: a quarter of the load time.
#[inline]
pub(super) fn pow2(e: i32) -> f64 {
    let normal = |k: i32| f64::from_bits(((k.clamp(-1022, 1023) + 1023) as u64) << 52);
    let e = e.clamp(-2200, 2200);
    // Two normal factors whose product is 2^e, correctly rounded when it leaves the normal range.
    let first = e.clamp(-1022, 1023);
    normal(first) * normal(e - first)
}
