/* A stand-in for bcryptprimitives.dll, used only by the Wine tests.
 *
 * Rust's standard library asks bcryptprimitives.dll!ProcessPrng for random
 * bytes at start; Windows 10 and later have it, Debian's Wine 8 does not.
 * Placed beside the .exe under test, this DLL answers from advapi32's
 * RtlGenRandom (SystemFunction036), which Wine has. Never shipped. */
#include <windows.h>
#include <ntsecapi.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!RtlGenRandom(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
