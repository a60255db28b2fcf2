//! One safe function per MPI call: every call returns `Result` with the MPI error code and
//! `MPI_Error_string`'s text. A nonblocking collective owns its buffers ([`Request`]) so that
//! MPI never writes into memory the caller got back: a request abandoned before it completes
//! (a timeout) leaks its buffers instead of freeing them under MPI's feet. All MPI calls of
//! the crate are here.

use std::ffi::{c_char, c_int, c_void};
use std::path::Path;

use libloading::Library;

use super::sys::{self, *};

/// A failed MPI call: which, its code, and MPI's text for the code.
#[derive(Debug, Clone)]
pub struct CallError {
    /// The entry point (`MPI_Iallgatherv`), or what was checked before calling it.
    pub call: &'static str,
    /// The MPI error code, when MPI returned one.
    pub code: Option<c_int>,
    /// `MPI_Error_string`'s text for the code, or why the call was not made.
    pub message: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code {
            Some(code) => write!(f, "{} failed with MPI error {code}", self.call)?,
            None => write!(f, "{}", self.call)?,
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message.trim())?;
        }
        Ok(())
    }
}

/// A handle type of one MPI ABI: [`OmpiHandle`] or [`MpichHandle`].
pub trait Handle: Copy + Send + Sync + 'static {}
impl Handle for OmpiHandle {}
impl Handle for MpichHandle {}

/// The predefined handles this crate uses.
#[derive(Debug, Clone, Copy)]
pub struct Handles<H> {
    /// `MPI_COMM_WORLD`.
    pub comm_world: H,
    /// `MPI_BYTE`.
    pub byte: H,
    /// `MPI_ERRORS_RETURN`.
    pub errors_return: H,
    /// `MPI_REQUEST_NULL`: what a request starts as.
    pub request_null: H,
}

/// The MPI entry points this crate calls, copied out of the loaded library.
struct Api<H> {
    initialized: MpiInitialized,
    finalized: MpiFinalized,
    init_thread: MpiInitThread,
    query_thread: MpiQueryThread,
    finalize: MpiFinalize,
    abort: MpiAbort<H>,
    error_string: MpiErrorString,
    comm_rank: MpiCommRank<H>,
    comm_size: MpiCommSize<H>,
    comm_set_errhandler: MpiCommSetErrhandler<H>,
    iallgatherv: MpiIallgatherv<H>,
    ialltoallv: MpiIalltoallv<H>,
    ibcast: MpiIbcast<H>,
    ibarrier: MpiIbarrier<H>,
    test: MpiTest<H>,
}

/// Loads every symbol of [`Api`] from `lib`.
///
/// # Safety
/// `H` must be the handle type of `lib`'s ABI.
unsafe fn load_api<H: Handle>(lib: &Library) -> Result<Api<H>, String> {
    // SAFETY: each type is the MPI standard's prototype of its symbol with the library's
    // handle type (the caller's promise); the pointers are stored in `Mpi` beside the
    // library, which outlives them.
    unsafe {
        Ok(Api {
            initialized: symbol(lib, "MPI_Initialized")?,
            finalized: symbol(lib, "MPI_Finalized")?,
            init_thread: symbol(lib, "MPI_Init_thread")?,
            query_thread: symbol(lib, "MPI_Query_thread")?,
            finalize: symbol(lib, "MPI_Finalize")?,
            abort: symbol(lib, "MPI_Abort")?,
            error_string: symbol(lib, "MPI_Error_string")?,
            comm_rank: symbol(lib, "MPI_Comm_rank")?,
            comm_size: symbol(lib, "MPI_Comm_size")?,
            comm_set_errhandler: symbol(lib, "MPI_Comm_set_errhandler")?,
            iallgatherv: symbol(lib, "MPI_Iallgatherv")?,
            ialltoallv: symbol(lib, "MPI_Ialltoallv")?,
            ibcast: symbol(lib, "MPI_Ibcast")?,
            ibarrier: symbol(lib, "MPI_Ibarrier")?,
            test: symbol(lib, "MPI_Test")?,
        })
    }
}

/// A loaded MPI library of handle ABI `H`.
pub struct Mpi<H> {
    /// The file or soname it was loaded from.
    pub path: String,
    /// `MPI_Get_library_version`'s first line (`Open MPI v4.1.4, …`).
    pub version: String,
    api: Api<H>,
    /// The predefined handles.
    pub handles: Handles<H>,
    _library: Library,
}

/// The MPI library found, by ABI.
pub enum Loaded {
    /// Open MPI (pointer handles); the ABI CI runs.
    OpenMpi(Mpi<OmpiHandle>),
    /// MPICH and its derivatives (int handles); untested.
    Mpich(Mpi<MpichHandle>),
}

impl Loaded {
    /// Loads the first library of [`sys::search_path`] that opens; a candidate that opens but
    /// is not a usable MPI is an error naming it. The error lists every candidate tried and
    /// why each failed.
    pub fn load() -> Result<Loaded, String> {
        Loaded::load_first(&sys::search_path())
    }

    fn load_first(candidates: &[String]) -> Result<Loaded, String> {
        let mut tried = Vec::new();
        for candidate in candidates {
            let library = match sys::open(Path::new(candidate)) {
                Ok(l) => l,
                Err(e) => {
                    tracing::debug!("MPI library {candidate} does not open: {e}");
                    tried.push(format!("{candidate} ({e})"));
                    continue;
                }
            };
            return Loaded::from_library(library, candidate.clone())
                .map_err(|e| format!("{candidate}: {e}"));
        }
        Err(format!(
            "no MPI library could be opened; tried {}",
            tried.join("; ")
        ))
    }

    fn from_library(library: Library, path: String) -> Result<Loaded, String> {
        let version = library_version(&library)?;
        if let Ok(comm_world) = sys::data_address(&library, OMPI_COMM_WORLD_SYMBOL) {
            let handles = Handles {
                comm_world,
                byte: sys::data_address(&library, OMPI_BYTE_SYMBOL)?,
                errors_return: sys::data_address(&library, OMPI_ERRORS_RETURN_SYMBOL)?,
                request_null: sys::data_address(&library, OMPI_REQUEST_NULL_SYMBOL)?,
            };
            // SAFETY: `ompi_mpi_comm_world` is exported: Open MPI, whose handles are
            // pointers.
            let api = unsafe { load_api::<OmpiHandle>(&library)? };
            return Ok(Loaded::OpenMpi(Mpi {
                path,
                version,
                api,
                handles,
                _library: library,
            }));
        }
        let mpich_family = ["MPICH", "Intel(R) MPI", "MVAPICH"];
        if !mpich_family.iter().any(|name| version.contains(name)) {
            return Err(format!(
                "neither Open MPI (no {OMPI_COMM_WORLD_SYMBOL}) nor MPICH-derived \
                 (MPI_Get_library_version says {version:?}); its handle ABI is unknown"
            ));
        }
        let handles = Handles {
            comm_world: MPICH_COMM_WORLD,
            byte: MPICH_BYTE,
            errors_return: MPICH_ERRORS_RETURN,
            request_null: MPICH_REQUEST_NULL,
        };
        // SAFETY: the library names itself MPICH or a derivative, whose handles are ints.
        let api = unsafe { load_api::<MpichHandle>(&library)? };
        Ok(Loaded::Mpich(Mpi {
            path,
            version,
            api,
            handles,
            _library: library,
        }))
    }
}

/// `MPI_Get_library_version`'s first line (no handles involved; callable before init).
fn library_version(library: &Library) -> Result<String, String> {
    // SAFETY: the prototype is the MPI standard's; the pointer is used while `library` is
    // borrowed.
    let get: MpiGetLibraryVersion = unsafe { symbol(library, "MPI_Get_library_version")? };
    let mut buf = vec![0u8; MAX_LIBRARY_VERSION_STRING];
    let mut len: c_int = 0;
    // SAFETY: `buf` holds MPI_MAX_LIBRARY_VERSION_STRING bytes of either ABI; `len` is a
    // valid int.
    let code = unsafe { get(buf.as_mut_ptr().cast::<c_char>(), &mut len) };
    if code != MPI_SUCCESS {
        return Err(format!(
            "MPI_Get_library_version failed with MPI error {code}"
        ));
    }
    let first_line = text(&buf, len).lines().next().unwrap_or("").to_string();
    // Open MPI goes on with "package: …, ident: …, repo rev: …"; the name and version come first.
    Ok(first_line
        .split(',')
        .next()
        .unwrap_or("")
        .trim()
        .to_string())
}

fn text(buf: &[u8], len: c_int) -> String {
    let len = usize::try_from(len).unwrap_or(0).min(buf.len());
    let bytes = &buf[..len];
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// What one nonblocking collective reads and writes, owned for as long as MPI may touch it.
/// Counts and displacements are in bytes (`MPI_BYTE`), already checked to fit a C `int`.
#[derive(Debug, Default)]
pub struct Buffers {
    /// This rank's outgoing bytes.
    pub send: Vec<u8>,
    /// Per-destination byte counts (all-to-all).
    pub send_counts: Vec<c_int>,
    /// Per-destination offsets into `send` (all-to-all).
    pub send_displs: Vec<c_int>,
    /// Incoming bytes (the broadcast buffer, in and out).
    pub recv: Vec<u8>,
    /// Per-source byte counts.
    pub recv_counts: Vec<c_int>,
    /// Per-source offsets into `recv`.
    pub recv_displs: Vec<c_int>,
}

impl Buffers {
    /// Gives the empty byte buffers a real allocation. An empty `Vec<u8>`'s pointer is the
    /// dangling address 1, which is Open MPI's `MPI_IN_PLACE` (`(void *)1`): MPI would read
    /// "in place" (an all-to-all's send data from the receive buffer) or reject the call.
    fn allocate(&mut self) {
        self.send.reserve(1);
        self.recv.reserve(1);
    }
}

/// A started nonblocking collective. Its buffers come back from [`Mpi::test`] once it is
/// complete; dropped before that, it leaks them (MPI may still write to them).
pub struct Request<H> {
    handle: H,
    buffers: Option<Buffers>,
}

impl<H> Drop for Request<H> {
    fn drop(&mut self) {
        if let Some(buffers) = self.buffers.take() {
            tracing::warn!(
                bytes = buffers.send.len() + buffers.recv.len(),
                "an unfinished MPI request is abandoned; its buffers are leaked, not freed"
            );
            std::mem::forget(buffers);
        }
    }
}

fn c_len(len: usize, call: &'static str) -> Result<c_int, CallError> {
    c_int::try_from(len).map_err(|_| CallError {
        call,
        code: None,
        message: format!(
            "{len} bytes exceed MPI's int count ({} at most)",
            c_int::MAX
        ),
    })
}

impl<H: Handle> Mpi<H> {
    fn check(&self, call: &'static str, code: c_int) -> Result<(), CallError> {
        if code == MPI_SUCCESS {
            return Ok(());
        }
        Err(CallError {
            call,
            code: Some(code),
            message: self.error_string(code),
        })
    }

    /// `MPI_Error_string(code)`, or a note that MPI had no text for it.
    pub fn error_string(&self, code: c_int) -> String {
        let mut buf = vec![0u8; MAX_ERROR_STRING];
        let mut len: c_int = 0;
        // SAFETY: `buf` holds at least MPI_MAX_ERROR_STRING bytes of either ABI.
        let rc = unsafe { (self.api.error_string)(code, buf.as_mut_ptr().cast(), &mut len) };
        if rc != MPI_SUCCESS {
            return format!("(MPI_Error_string has no text for {code})");
        }
        text(&buf, len)
    }

    /// `MPI_Initialized`.
    pub fn initialized(&self) -> Result<bool, CallError> {
        let mut flag: c_int = 0;
        // SAFETY: `flag` is a valid int; callable at any time.
        self.check("MPI_Initialized", unsafe {
            (self.api.initialized)(&mut flag)
        })?;
        Ok(flag != 0)
    }

    /// `MPI_Finalized`.
    pub fn finalized(&self) -> Result<bool, CallError> {
        let mut flag: c_int = 0;
        // SAFETY: `flag` is a valid int; callable at any time.
        self.check("MPI_Finalized", unsafe { (self.api.finalized)(&mut flag) })?;
        Ok(flag != 0)
    }

    /// `MPI_Init_thread(NULL, NULL, required, &provided)`: the provided level.
    pub fn init_thread(&self, required: c_int) -> Result<c_int, CallError> {
        let mut provided: c_int = 0;
        // SAFETY: null argc/argv are allowed since MPI-2; `provided` is a valid int. The
        // caller initialises once per process (the process-wide owner in `mpi`).
        let code = unsafe {
            (self.api.init_thread)(
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                required,
                &mut provided,
            )
        };
        self.check("MPI_Init_thread", code)?;
        Ok(provided)
    }

    /// `MPI_Query_thread`: the level MPI was initialised with.
    pub fn query_thread(&self) -> Result<c_int, CallError> {
        let mut provided: c_int = 0;
        // SAFETY: `provided` is a valid int; MPI is initialised (caller checked).
        self.check("MPI_Query_thread", unsafe {
            (self.api.query_thread)(&mut provided)
        })?;
        Ok(provided)
    }

    /// `MPI_Finalize`.
    pub fn finalize(&self) -> Result<(), CallError> {
        // SAFETY: no arguments; the caller finalises once, with no request pending.
        self.check("MPI_Finalize", unsafe { (self.api.finalize)() })
    }

    /// `MPI_Abort(MPI_COMM_WORLD, code)`: asks the launcher to end every rank of the job.
    /// Open MPI and MPICH do not return from it.
    pub fn abort_world(&self, code: c_int) -> Result<(), CallError> {
        // SAFETY: a predefined communicator; any code is allowed.
        let rc = unsafe { (self.api.abort)(self.handles.comm_world, code) };
        self.check("MPI_Abort", rc)
    }

    /// `MPI_Comm_rank(MPI_COMM_WORLD)`.
    pub fn world_rank(&self) -> Result<c_int, CallError> {
        let mut rank: c_int = 0;
        // SAFETY: a predefined communicator and a valid int.
        let code = unsafe { (self.api.comm_rank)(self.handles.comm_world, &mut rank) };
        self.check("MPI_Comm_rank", code)?;
        Ok(rank)
    }

    /// `MPI_Comm_size(MPI_COMM_WORLD)`.
    pub fn world_size(&self) -> Result<c_int, CallError> {
        let mut size: c_int = 0;
        // SAFETY: a predefined communicator and a valid int.
        let code = unsafe { (self.api.comm_size)(self.handles.comm_world, &mut size) };
        self.check("MPI_Comm_size", code)?;
        Ok(size)
    }

    /// `MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN)`: errors come back as
    /// codes instead of aborting the job.
    pub fn world_errors_return(&self) -> Result<(), CallError> {
        // SAFETY: predefined handles.
        let code = unsafe {
            (self.api.comm_set_errhandler)(self.handles.comm_world, self.handles.errors_return)
        };
        self.check("MPI_Comm_set_errhandler", code)
    }

    /// `MPI_Iallgatherv` on the world: `send` to every rank, `recv` by `recv_counts` and
    /// `recv_displs`.
    pub fn iallgatherv(&self, mut b: Buffers) -> Result<Request<H>, CallError> {
        let call = "MPI_Iallgatherv";
        b.allocate();
        self.check_layout(&b.recv, &b.recv_counts, &b.recv_displs, call)?;
        let send_count = c_len(b.send.len(), call)?;
        let mut handle = self.handles.request_null;
        // SAFETY: every pointer is into `b`, checked above to cover the counts and
        // displacements; `b` moves into the request, which keeps it (or leaks it) until MPI
        // is done with it. Moving the vectors does not move their heap storage.
        let code = unsafe {
            (self.api.iallgatherv)(
                b.send.as_ptr().cast::<c_void>(),
                send_count,
                self.handles.byte,
                b.recv.as_mut_ptr().cast::<c_void>(),
                b.recv_counts.as_ptr(),
                b.recv_displs.as_ptr(),
                self.handles.byte,
                self.handles.comm_world,
                &mut handle,
            )
        };
        self.check(call, code)?;
        Ok(Request {
            handle,
            buffers: Some(b),
        })
    }

    /// `MPI_Ialltoallv` on the world.
    pub fn ialltoallv(&self, mut b: Buffers) -> Result<Request<H>, CallError> {
        let call = "MPI_Ialltoallv";
        b.allocate();
        self.check_layout(&b.send, &b.send_counts, &b.send_displs, call)?;
        self.check_layout(&b.recv, &b.recv_counts, &b.recv_displs, call)?;
        let mut handle = self.handles.request_null;
        // SAFETY: as in `iallgatherv`.
        let code = unsafe {
            (self.api.ialltoallv)(
                b.send.as_ptr().cast::<c_void>(),
                b.send_counts.as_ptr(),
                b.send_displs.as_ptr(),
                self.handles.byte,
                b.recv.as_mut_ptr().cast::<c_void>(),
                b.recv_counts.as_ptr(),
                b.recv_displs.as_ptr(),
                self.handles.byte,
                self.handles.comm_world,
                &mut handle,
            )
        };
        self.check(call, code)?;
        Ok(Request {
            handle,
            buffers: Some(b),
        })
    }

    /// `MPI_Ibcast` of `b.recv` from `root`.
    pub fn ibcast(&self, mut b: Buffers, root: c_int) -> Result<Request<H>, CallError> {
        let call = "MPI_Ibcast";
        b.allocate();
        let count = c_len(b.recv.len(), call)?;
        let mut handle = self.handles.request_null;
        // SAFETY: as in `iallgatherv`; `count` is `b.recv`'s length.
        let code = unsafe {
            (self.api.ibcast)(
                b.recv.as_mut_ptr().cast::<c_void>(),
                count,
                self.handles.byte,
                root,
                self.handles.comm_world,
                &mut handle,
            )
        };
        self.check(call, code)?;
        Ok(Request {
            handle,
            buffers: Some(b),
        })
    }

    /// `MPI_Ibarrier` on the world.
    pub fn ibarrier(&self) -> Result<Request<H>, CallError> {
        let mut handle = self.handles.request_null;
        // SAFETY: a predefined communicator and a request variable.
        let code = unsafe { (self.api.ibarrier)(self.handles.comm_world, &mut handle) };
        self.check("MPI_Ibarrier", code)?;
        Ok(Request {
            handle,
            buffers: Some(Buffers::default()),
        })
    }

    /// `MPI_Test`: the request's buffers once it has completed, `None` while it runs.
    pub fn test(&self, request: &mut Request<H>) -> Result<Option<Buffers>, CallError> {
        let mut flag: c_int = 0;
        let mut status = [0u64; STATUS_WORDS];
        // SAFETY: `request.handle` came from a start call of this library and has not
        // completed (`buffers` is still present); `status` is larger than either ABI's
        // MPI_Status.
        let code = unsafe {
            (self.api.test)(
                &mut request.handle,
                &mut flag,
                status.as_mut_ptr().cast::<c_void>(),
            )
        };
        self.check("MPI_Test", code)?;
        Ok(if flag != 0 {
            request.buffers.take()
        } else {
            None
        })
    }

    /// Checks that `counts`/`displs` (one per rank) stay inside `buf` before MPI sees them.
    fn check_layout(
        &self,
        buf: &[u8],
        counts: &[c_int],
        displs: &[c_int],
        call: &'static str,
    ) -> Result<(), CallError> {
        let fits = counts.len() == displs.len()
            && counts.iter().zip(displs).all(|(&c, &d)| {
                c >= 0 && d >= 0 && i64::from(c) + i64::from(d) <= buf.len() as i64
            });
        if fits {
            Ok(())
        } else {
            Err(CallError {
                call,
                code: None,
                message: format!(
                    "counts {counts:?} at offsets {displs:?} do not fit a {}-byte buffer",
                    buf.len()
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_names_every_path_tried() {
        let candidates = [
            "/nonexistent/libmpi.so.40".to_string(),
            "libmpi-none.so.7".into(),
        ];
        let Err(err) = Loaded::load_first(&candidates) else {
            panic!("a library that does not exist loaded");
        };
        for candidate in &candidates {
            assert!(err.contains(candidate.as_str()), "{err}");
        }
    }
}
