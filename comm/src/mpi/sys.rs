//! Raw FFI of the MPI C API, opened at run time with libloading: the C prototypes from the MPI
//! standard (MPI-3.1, the nonblocking collectives), the two handle ABIs, the library search.
//! Nothing here calls MPI; `result` does, one safe function per call.
//!
//! MPI fixes the C prototypes but not what a handle is. Open MPI's `MPI_Comm`,
//! `MPI_Datatype`, `MPI_Errhandler` and `MPI_Request` are pointers, and its predefined handles
//! are the addresses of exported globals (`MPI_COMM_WORLD` is `&ompi_mpi_comm_world`); MPICH
//! (and the MPIs built on it: Intel MPI, MVAPICH) use `int` handles whose predefined values are
//! constants of its `mpi.h`. The prototypes below are generic over the handle type `H`.

use std::ffi::{c_char, c_int, c_void};
use std::path::Path;

use libloading::Library;

/// `MPI_SUCCESS`: 0 in every implementation (the standard requires it).
pub const MPI_SUCCESS: c_int = 0;
/// `MPI_THREAD_FUNNELED` (only the thread that initialised MPI calls it): 1 in Open MPI's
/// and MPICH's `mpi.h`.
pub const MPI_THREAD_FUNNELED: c_int = 1;
/// `MPI_THREAD_SERIALIZED` (any thread, one at a time): 2 in both.
pub const MPI_THREAD_SERIALIZED: c_int = 2;
/// Bytes for `MPI_Error_string`: at least `MPI_MAX_ERROR_STRING` of either (Open MPI 256,
/// MPICH 1024).
pub const MAX_ERROR_STRING: usize = 1024;
/// Bytes for `MPI_Get_library_version`: `MPI_MAX_LIBRARY_VERSION_STRING` (Open MPI 256,
/// MPICH 8192).
pub const MAX_LIBRARY_VERSION_STRING: usize = 8192;
/// An `MPI_Status` is 24 bytes in Open MPI (5 ints and a size_t), 20 in MPICH; `MPI_Test`
/// gets a zeroed buffer of this many bytes, 8-aligned, rather than `MPI_STATUS_IGNORE`
/// (null in Open MPI, `(MPI_Status *)1` in MPICH).
pub const STATUS_WORDS: usize = 8;

/// An Open MPI handle: the address of an `ompi_*_t` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct OmpiHandle(pub *mut c_void);

// SAFETY: an Open MPI handle is an address MPI hands out and takes back; this crate never
// dereferences it, and every call through it is serialised by the communicator's lock.
unsafe impl Send for OmpiHandle {}
// SAFETY: as above: shared references only copy the address.
unsafe impl Sync for OmpiHandle {}

/// An MPICH handle (`typedef int MPI_Comm;` and alike in MPICH's `mpi.h`).
pub type MpichHandle = c_int;

/// `MPI_COMM_WORLD` of MPICH's `mpi.h`.
pub const MPICH_COMM_WORLD: MpichHandle = 0x4400_0000;
/// `MPI_BYTE` of MPICH's `mpi.h`.
pub const MPICH_BYTE: MpichHandle = 0x4c00_010d;
/// `MPI_ERRORS_RETURN` of MPICH's `mpi.h`.
pub const MPICH_ERRORS_RETURN: MpichHandle = 0x5400_0001;
/// `MPI_REQUEST_NULL` of MPICH's `mpi.h`.
pub const MPICH_REQUEST_NULL: MpichHandle = 0x2c00_0000;

/// The exported globals whose addresses are Open MPI's predefined handles.
pub const OMPI_COMM_WORLD_SYMBOL: &str = "ompi_mpi_comm_world";
/// `MPI_BYTE` is `&ompi_mpi_byte`.
pub const OMPI_BYTE_SYMBOL: &str = "ompi_mpi_byte";
/// `MPI_ERRORS_RETURN` is `&ompi_mpi_errors_return`.
pub const OMPI_ERRORS_RETURN_SYMBOL: &str = "ompi_mpi_errors_return";
/// `MPI_REQUEST_NULL` is `&ompi_request_null`.
pub const OMPI_REQUEST_NULL_SYMBOL: &str = "ompi_request_null";

/// `int MPI_Initialized(int *flag)`.
pub type MpiInitialized = unsafe extern "C" fn(*mut c_int) -> c_int;
/// `int MPI_Finalized(int *flag)`.
pub type MpiFinalized = unsafe extern "C" fn(*mut c_int) -> c_int;
/// `int MPI_Init_thread(int *argc, char ***argv, int required, int *provided)`; argc and argv
/// may be null (MPI-2).
pub type MpiInitThread =
    unsafe extern "C" fn(*mut c_int, *mut *mut *mut c_char, c_int, *mut c_int) -> c_int;
/// `int MPI_Query_thread(int *provided)`.
pub type MpiQueryThread = unsafe extern "C" fn(*mut c_int) -> c_int;
/// `int MPI_Finalize(void)`.
pub type MpiFinalize = unsafe extern "C" fn() -> c_int;
/// `int MPI_Get_library_version(char *version, int *resultlen)`: callable before
/// `MPI_Init` (MPI-3).
pub type MpiGetLibraryVersion = unsafe extern "C" fn(*mut c_char, *mut c_int) -> c_int;
/// `int MPI_Error_string(int errorcode, char *string, int *resultlen)`.
pub type MpiErrorString = unsafe extern "C" fn(c_int, *mut c_char, *mut c_int) -> c_int;
/// `int MPI_Abort(MPI_Comm comm, int errorcode)`.
pub type MpiAbort<H> = unsafe extern "C" fn(H, c_int) -> c_int;
/// `int MPI_Comm_rank(MPI_Comm comm, int *rank)`.
pub type MpiCommRank<H> = unsafe extern "C" fn(H, *mut c_int) -> c_int;
/// `int MPI_Comm_size(MPI_Comm comm, int *size)`.
pub type MpiCommSize<H> = unsafe extern "C" fn(H, *mut c_int) -> c_int;
/// `int MPI_Comm_set_errhandler(MPI_Comm comm, MPI_Errhandler errhandler)`.
pub type MpiCommSetErrhandler<H> = unsafe extern "C" fn(H, H) -> c_int;
/// `int MPI_Iallgatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype,
/// void *recvbuf, const int recvcounts[], const int displs[], MPI_Datatype recvtype,
/// MPI_Comm comm, MPI_Request *request)`.
pub type MpiIallgatherv<H> = unsafe extern "C" fn(
    *const c_void,
    c_int,
    H,
    *mut c_void,
    *const c_int,
    *const c_int,
    H,
    H,
    *mut H,
) -> c_int;
/// `int MPI_Ialltoallv(const void *sendbuf, const int sendcounts[], const int sdispls[],
/// MPI_Datatype sendtype, void *recvbuf, const int recvcounts[], const int rdispls[],
/// MPI_Datatype recvtype, MPI_Comm comm, MPI_Request *request)`.
pub type MpiIalltoallv<H> = unsafe extern "C" fn(
    *const c_void,
    *const c_int,
    *const c_int,
    H,
    *mut c_void,
    *const c_int,
    *const c_int,
    H,
    H,
    *mut H,
) -> c_int;
/// `int MPI_Ibcast(void *buffer, int count, MPI_Datatype datatype, int root, MPI_Comm comm,
/// MPI_Request *request)`.
pub type MpiIbcast<H> = unsafe extern "C" fn(*mut c_void, c_int, H, c_int, H, *mut H) -> c_int;
/// `int MPI_Ibarrier(MPI_Comm comm, MPI_Request *request)`.
pub type MpiIbarrier<H> = unsafe extern "C" fn(H, *mut H) -> c_int;
/// `int MPI_Test(MPI_Request *request, int *flag, MPI_Status *status)`.
pub type MpiTest<H> = unsafe extern "C" fn(*mut H, *mut c_int, *mut c_void) -> c_int;

/// Where the MPI library is looked for, in order: `$CONCORD_MPI_LIBRARY` when set, then the
/// sonames of Open MPI 3–5 (`libmpi.so.40`), MPICH (`libmpi.so.12`), and the development link
/// `libmpi.so`, through the loader's search path.
pub fn search_path() -> Vec<String> {
    let mut out = Vec::new();
    if let Some(explicit) = std::env::var_os(LIBRARY_ENV).filter(|s| !s.is_empty()) {
        out.push(explicit.to_string_lossy().into_owned());
    }
    out.extend(SONAMES.iter().map(|s| s.to_string()));
    out
}

/// The variable naming the MPI library to load.
pub const LIBRARY_ENV: &str = "CONCORD_MPI_LIBRARY";
/// The sonames tried after `$CONCORD_MPI_LIBRARY`.
pub const SONAMES: [&str; 3] = ["libmpi.so.40", "libmpi.so.12", "libmpi.so"];

/// Opens the shared library `path` (a bare name goes through the loader's search path).
pub fn open(path: &Path) -> Result<Library, String> {
    // SAFETY: opening libmpi runs its initialisers, which have no precondition on the caller
    // (MPI itself starts in `MPI_Init_thread`); every pointer copied out of the library is
    // stored beside it (`result::Mpi`), so the library outlives them.
    unsafe { Library::new(path) }.map_err(|e| e.to_string())
}

/// Copies the function pointer named `name` (without the NUL) out of `lib`.
///
/// # Safety
/// `T` must be the C prototype of that symbol (one of the types above, with the handle type
/// of the library's ABI), and the pointer must only be called while `lib` is loaded.
pub unsafe fn symbol<T: Copy>(lib: &Library, name: &str) -> Result<T, String> {
    let c_name = format!("{name}\0");
    // SAFETY: forwarded to the caller (see # Safety).
    unsafe { lib.get::<T>(c_name.as_bytes()) }
        .map(|s| *s)
        .map_err(|e| format!("lacks {name}: {e}"))
}

/// The address of the exported data symbol `name`: an Open MPI predefined handle.
pub fn data_address(lib: &Library, name: &str) -> Result<OmpiHandle, String> {
    let c_name = format!("{name}\0");
    // SAFETY: a `Symbol<*mut c_void>` derefs to the symbol's own address (libloading's way to
    // reach a static); it is never read or written here, only handed to MPI, which owns the
    // object behind it for as long as the library stays loaded.
    unsafe { lib.get::<*mut c_void>(c_name.as_bytes()) }
        .map(|s| OmpiHandle(*s))
        .map_err(|e| format!("lacks {name}: {e}"))
        .and_then(|h| {
            if h.0.is_null() {
                Err(format!("{name} resolves to a null address"))
            } else {
                Ok(h)
            }
        })
}

extern "C" {
    /// `int atexit(void (*function)(void))` (C standard library).
    fn atexit(function: extern "C" fn()) -> c_int;
}

/// Registers `function` to run when the process exits (`exit`, or a return from `main`).
pub fn at_exit(function: extern "C" fn()) -> Result<(), String> {
    // SAFETY: `atexit` only stores the pointer; `function` is a plain `extern "C" fn` with no
    // captured state, valid for the whole life of the process.
    match unsafe { atexit(function) } {
        0 => Ok(()),
        code => Err(format!("atexit returned {code}")),
    }
}
