#if canImport(Glibc)
import Glibc
#endif

/// stdout is block-buffered when piped; scripts and tests wait for the startup line.
func flushStandardOutput() {
    fflush(nil)  // nil flushes every output stream, and avoids touching the global `stdout` var
}
