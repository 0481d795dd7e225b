//! Conversions between Windows' UTF-16 strings and Rust's.

/// A NUL-terminated UTF-16 copy of `s`, for the `W` functions.
pub fn to_wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// A UTF-16 buffer filled by the OS, up to its first NUL.
pub fn from_wide(buffer: &[u16]) -> String {
    let len = buffer.iter().position(|&c| c == 0).unwrap_or(buffer.len());
    String::from_utf16_lossy(&buffer[..len])
}
