//! Page geometry. The page size is read from the OS once; nothing assumes 4 KiB.

/// The system page size in bytes.
pub fn page_size() -> usize {
    rustix::param::page_size()
}

/// Round `bytes` up to a whole number of pages (saturating at the largest page-aligned value).
pub(crate) fn round_up(bytes: usize) -> usize {
    let page = page_size();
    bytes
        .checked_add(page - 1)
        .map_or(usize::MAX & !(page - 1), |b| b & !(page - 1))
}

/// A page number inside one instance's arena (page 0 is the arena's first page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageId(pub u32);

impl PageId {
    /// The page's index as a `usize`.
    pub fn index(self) -> usize {
        self.0 as usize
    }
    /// Byte offset of the page from the start of the arena.
    pub fn offset(self) -> usize {
        self.index() * page_size()
    }
}

/// A run of consecutive pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageRun {
    pub first: PageId,
    pub count: u32,
}

impl PageRun {
    /// The run of just `page`.
    pub fn one(page: PageId) -> PageRun {
        PageRun {
            first: page,
            count: 1,
        }
    }
    pub fn pages(self) -> impl Iterator<Item = PageId> {
        (self.first.0..self.first.0 + self.count).map(PageId)
    }
    pub fn bytes(self) -> usize {
        self.count as usize * page_size()
    }
}
