"""libc functions that keep hidden static state: unsafe when threads call them at once, in C
source (FT046) and in a binary's import table (FT152) alike."""

from __future__ import annotations

__all__ = ["NON_REENTRANT"]

# libc function -> the reentrant replacement named in the message.
NON_REENTRANT: dict[str, str] = {
    "strtok": "strtok_r", "asctime": "asctime_r", "ctime": "ctime_r", "gmtime": "gmtime_r",
    "localtime": "localtime_r", "rand": "rand_r or a per-object generator",
    "srand": "a per-object generator", "strerror": "strerror_r",
    "setlocale": "uselocale/newlocale", "tmpnam": "mkstemp",
    "gethostbyname": "getaddrinfo", "gethostbyaddr": "getnameinfo", "inet_ntoa": "inet_ntop",
    "getpwnam": "getpwnam_r", "getpwuid": "getpwuid_r", "getgrnam": "getgrnam_r",
    "getgrgid": "getgrgid_r", "getlogin": "getlogin_r", "ttyname": "ttyname_r",
    "ptsname": "ptsname_r", "ecvt": "snprintf", "fcvt": "snprintf", "crypt": "crypt_r",
    "strsignal": "sigabbrev_np/sigdescr_np",
}
