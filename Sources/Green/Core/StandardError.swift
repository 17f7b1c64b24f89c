// glibc's `stderr` is a C global, which Swift 6 cannot prove safe to read
// from any thread. It is set before `main` and never reassigned, and stdio
// locks the stream for each call, so it is: the import says so for this file.
@preconcurrency import Glibc

/// Write `text` to stderr (stdio's unbuffered stream: one `fputs`, so lines
/// written by several threads do not interleave).
func printToStandardError(_ text: String) {
    fputs(text, stderr)
}
