//! Standard output that a closed pipe cannot crash: `concord inspect | head -1` must end
//! quietly, as Unix tools do, not panic the way `println!` does on `EPIPE`. Lines go through
//! [`outln!`], whose error names standard output; `main` treats a broken pipe there as a
//! normal end (exit 0, nothing on stderr).

use concord_core::{Error, Result};

/// The path an error on standard output carries.
pub const STDOUT: &str = "standard output";

/// Wraps a write error on standard output.
pub fn stdout_error(source: std::io::Error) -> Error {
    Error::io(STDOUT, source)
}

/// Writes one formatted line to standard output (on rank 0 only under several ranks: the
/// others computed the same lines).
pub fn write_line(args: std::fmt::Arguments<'_>) -> Result<()> {
    use std::io::Write;
    if !crate::ranks::writes_output() {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(stdout_error)
}

/// True when `e` is standard output's reader having gone away (`head`, a closed pager).
pub fn is_closed_stdout(e: &Error) -> bool {
    matches!(e, Error::Io { path, source }
        if path.as_os_str() == STDOUT && source.kind() == std::io::ErrorKind::BrokenPipe)
}

/// `println!` that returns a `Result` instead of panicking on a closed pipe.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::stdout::write_line(format_args!($($arg)*))
    };
}
pub(crate) use outln;
