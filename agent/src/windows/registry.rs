//! Reading values under `HKEY_LOCAL_MACHINE`.

use windows_sys::Win32::System::Registry::{
    RegGetValueW, HKEY_LOCAL_MACHINE, RRF_RT_REG_DWORD, RRF_RT_REG_SZ, RRF_SUBKEY_WOW6464KEY,
};

use super::text::{from_wide, to_wide};

/// A REG_SZ value, trimmed; from the 64-bit view of the registry whatever
/// this program's bitness, so a 32-bit build reads the same values.
pub fn machine_string(key: &str, value: &str) -> Option<String> {
    let (key, value) = (to_wide(key), to_wide(value));
    let mut buffer = [0u16; 512];
    let mut bytes = (buffer.len() * 2) as u32;
    // SAFETY: `bytes` is the buffer's size in bytes; names are NUL-terminated.
    let status = unsafe {
        RegGetValueW(
            HKEY_LOCAL_MACHINE,
            key.as_ptr(),
            value.as_ptr(),
            RRF_RT_REG_SZ | RRF_SUBKEY_WOW6464KEY,
            std::ptr::null_mut(),
            buffer.as_mut_ptr().cast(),
            &mut bytes,
        )
    };
    let text = (status == 0).then(|| from_wide(&buffer[..bytes as usize / 2]).trim().to_owned())?;
    (!text.is_empty()).then_some(text)
}

/// A REG_DWORD value, from the 64-bit view as above.
pub fn machine_dword(key: &str, value: &str) -> Option<u32> {
    let (key, value) = (to_wide(key), to_wide(value));
    let mut data = 0u32;
    let mut bytes = 4u32;
    // SAFETY: as above, for a 4-byte value.
    let status = unsafe {
        RegGetValueW(
            HKEY_LOCAL_MACHINE,
            key.as_ptr(),
            value.as_ptr(),
            RRF_RT_REG_DWORD | RRF_SUBKEY_WOW6464KEY,
            std::ptr::null_mut(),
            (&mut data as *mut u32).cast(),
            &mut bytes,
        )
    };
    (status == 0).then_some(data)
}
