// Migration example: libpq, PostgreSQL's own C client library, unmodified.
// The query function below is plain blocking code. Run it for each report
// one after another, then on fibers: the same code, now concurrent, because
// the shim turns libpq's blocking socket waits into fiber switches.
//
//   eval "$(bash .ci/servers start)"        # a throw-away PostgreSQL on loopback
//   swift run -c release postgres-queries
import CLibpq
import Foundation
import Green

guard let conninfo = ProcessInfo.processInfo.environment["GREEN_PG_CONNINFO"] else {
    print("""
        Set GREEN_PG_CONNINFO to a PostgreSQL connection string, for example by starting
        the test server:  eval "$(bash .ci/servers start)"
        """)
    exit(2)
}

/// Blocking code, as anyone would write it against libpq.
func slowReport(_ id: Int) -> String {
    let conn = PQconnectdb(conninfo)
    defer { PQfinish(conn) }
    guard PQstatus(conn) == CONNECTION_OK else { return "connect failed: \(String(cString: PQerrorMessage(conn)))" }
    // pg_sleep stands for a query that makes the server work for 100 ms.
    let res = PQexec(conn, "SELECT pg_sleep(0.1), 'report ' || \(id) || ': ' || md5('\(id)')")
    defer { PQclear(res) }
    guard PQresultStatus(res) == PGRES_TUPLES_OK else { return "query failed: \(String(cString: PQerrorMessage(conn)))" }
    return String(cString: PQgetvalue(res, 0, 1))
}

let ids = Array(0..<20)
func timed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
    let start = Date()
    let r = try body()
    return (r, Date().timeIntervalSince(start))
}

let (sequential, sequentialTime) = timed { ids.map(slowReport) }
let (concurrent, concurrentTime) = try timed {
    try ids.map { id in Green.spawn { slowReport(id) } }.map { try $0.value }
}

print("\(ids.count) queries of 100 ms through libpq")
print(String(format: "sequential: %.0f ms", sequentialTime * 1000))
print(String(format: "on fibers:  %.0f ms  (same results: %@)", concurrentTime * 1000, sequential == concurrent ? "true" : "false"))
print("first: \(concurrent[0])")
