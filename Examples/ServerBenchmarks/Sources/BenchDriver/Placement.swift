import Glibc

/// Which CPUs the servers and the load generators run on. With two or more
/// CPUs the server is pinned to CPU 0 and the client to CPU 1 (taskset), so
/// the two never share a core; with one CPU nothing is pinned.
struct Placement {
    /// The CPUs online.
    static let cpuCount = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))

    /// taskset's CPU list for a server, or nil for no pinning.
    let serverCPUs: String?
    /// taskset's CPU list for a client, or nil for no pinning.
    let clientCPUs: String?

    /// Server on CPU 0, client on CPU 1 (when there are two CPUs).
    static var pinned: Placement {
        cpuCount >= 2 ? Placement(serverCPUs: "0", clientCPUs: "1") : Placement(serverCPUs: nil, clientCPUs: nil)
    }

    /// Every process may use every CPU (the all-cores HTTP runs).
    static var unpinned: Placement { Placement(serverCPUs: nil, clientCPUs: nil) }

    /// The command prefix that runs a program on `cpus`: it also makes the
    /// kernel kill the program if this driver dies (setpriv --pdeathsig), so
    /// no server outlives a crashed or killed run.
    static func prefix(cpus: String?) -> [String] {
        var argv = ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--"]
        if let cpus { argv += ["/usr/bin/taskset", "-c", cpus] }
        return argv
    }

    /// How this placement reads in a report.
    var description: String {
        if let s = serverCPUs, let c = clientCPUs { return "server on CPU \(s), client on CPU \(c)" }
        return "no pinning: servers and client share all \(Placement.cpuCount) CPUs"
    }
}
