import Glibc

/// The user + system CPU seconds process `pid` has used so far, all its
/// threads together (utime and stime of /proc/PID/stat); nil if it is gone.
func processCPUSeconds(pid: Int32) -> Double? {
    guard let file = fopen("/proc/\(pid)/stat", "r") else { return nil }
    defer { fclose(file) }
    var buffer = [CChar](repeating: 0, count: 4096)
    guard fgets(&buffer, Int32(buffer.count), file) != nil else { return nil }
    let line = String(cString: buffer)
    // The command name (field 2) is in parentheses and may hold spaces:
    // count fields after the last ')'. Field 3 is then the first.
    guard let close = line.lastIndex(of: ")") else { return nil }
    let fields = line[line.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return nil }
    return (utime + stime) / Double(sysconf(Int32(_SC_CLK_TCK)))
}
