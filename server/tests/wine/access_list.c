/* Reads access lists back for the Wine tests, as Windows itself tells
 * them. Never shipped.
 *
 *   access_list.exe PATH...
 *
 * prints "user<TAB>SID" for the user it runs as (the agent's, in the same
 * prefix), then "PATH<TAB>SDDL" for each path: its access list
 * (GetNamedSecurityInfoW, DACL only) as ConvertSecurityDescriptorToString-
 * SecurityDescriptorW writes it. Exits 1, saying why on stderr, when
 * anything cannot be read. */
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>
#include <stdio.h>

static int fail(const wchar_t *what, const wchar_t *path, DWORD code)
{
    fwprintf(stderr, L"%ls %ls: error %lu\n", what, path, (unsigned long)code);
    return 1;
}

int wmain(int argc, wchar_t **argv)
{
    HANDLE token;
    BYTE buffer[256];
    DWORD needed;
    wchar_t *text;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token))
        return fail(L"OpenProcessToken", L"", GetLastError());
    if (!GetTokenInformation(token, TokenUser, buffer, sizeof buffer, &needed))
        return fail(L"GetTokenInformation", L"", GetLastError());
    if (!ConvertSidToStringSidW(((TOKEN_USER *)buffer)->User.Sid, &text))
        return fail(L"ConvertSidToStringSidW", L"", GetLastError());
    wprintf(L"user\t%ls\n", text);
    LocalFree(text);
    CloseHandle(token);

    for (int i = 1; i < argc; i++) {
        PSECURITY_DESCRIPTOR descriptor;
        PACL dacl;
        DWORD status = GetNamedSecurityInfoW(argv[i], SE_FILE_OBJECT,
                                             DACL_SECURITY_INFORMATION, NULL,
                                             NULL, &dacl, NULL, &descriptor);
        if (status != ERROR_SUCCESS)
            return fail(L"GetNamedSecurityInfoW", argv[i], status);
        if (!ConvertSecurityDescriptorToStringSecurityDescriptorW(
                descriptor, SDDL_REVISION_1, DACL_SECURITY_INFORMATION, &text,
                NULL))
            return fail(L"ConvertSecurityDescriptorToStringSecurityDescriptorW",
                        argv[i], GetLastError());
        wprintf(L"%ls\t%ls\n", argv[i], text);
        LocalFree(text);
        LocalFree(descriptor);
    }
    fflush(stdout);
    return 0;
}
