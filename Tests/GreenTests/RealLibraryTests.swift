import CHiredis
import CLibpq
import Foundation
import XCTest
@testable import Green

/// Unmodified C client libraries from Debian's packages (libpq, hiredis)
/// against real servers on loopback, started by `.ci/servers`. Their blocking
/// calls reach the shim, so fibers using them run concurrently.
final class RealLibraryTests: XCTestCase {
    /// The server's address from the environment; without it the test is
    /// skipped loudly on a developer's machine and fails under CI.
    func server(_ variable: String) throws -> String {
        if let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty { return value }
        let message = "\(variable) is not set: start the test servers with `eval \"$(bash .ci/servers start)\"` (or run `bash .ci/run`)"
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            XCTFail(message)
            throw TestError(code: -1)
        }
        print("SKIPPING \(name): \(message)")
        throw XCTSkip(message)
    }

    // MARK: libpq + PostgreSQL

    func query(_ conninfo: String, _ sql: String) -> Result<String, TestError> {
        let conn = PQconnectdb(conninfo)
        defer { PQfinish(conn) }
        guard PQstatus(conn) == CONNECTION_OK else {
            print("libpq connect: \(String(cString: PQerrorMessage(conn)))")
            return .failure(TestError(code: 1))
        }
        let res = PQexec(conn, sql)
        defer { PQclear(res) }
        guard PQresultStatus(res) == PGRES_TUPLES_OK else {
            print("libpq query: \(String(cString: PQerrorMessage(conn)))")
            return .failure(TestError(code: 2))
        }
        return .success(String(cString: PQgetvalue(res, 0, PQnfields(res) - 1)))
    }

    func testLibpqQueriesOnFibersOverlap() throws {
        let conninfo = try server("GREEN_PG_CONNINFO")
        var ticks = 0
        let ticker = Green.spawn { while true { try Green.sleep(for: .milliseconds(10)); ticks += 1 } }
        var results: [Result<String, TestError>] = []
        // 50 connections × pg_sleep(0.2): 10 s one after another.
        let ms = try elapsedMilliseconds {
            let fibers = (0..<50).map { i in Green.spawn { self.query(conninfo, "SELECT pg_sleep(0.2), \(i)") } }
            results = try fibers.map { try $0.value }
        }
        ticker.cancel()
        XCTAssertEqual(results.map { try? $0.get() }, (0..<50).map { String($0) })
        XCTAssertGreaterThanOrEqual(ms, 200)
        XCTAssertLessThan(ms, 5_000, "the 50 queries must overlap, not run one after another")
        XCTAssertGreaterThan(ticks, 5, "other fibers ran while libpq waited")
    }

    func testLibpqErrorsAreLibpqs() throws {
        let conninfo = try server("GREEN_PG_CONNINFO")
        let bad = try Green.spawn { self.query(conninfo, "SELECT * FROM no_such_table") }.value
        XCTAssertEqual(bad.map { _ in 0 }.mapError { $0 }, .failure(TestError(code: 2)))
        let refused = try Green.spawn { self.query("host=127.0.0.1 port=1 connect_timeout=2", "SELECT 1") }.value
        XCTAssertEqual(refused.map { _ in 0 }, .failure(TestError(code: 1)))
    }

    // MARK: hiredis + redis-server

    func command(_ ctx: UnsafeMutablePointer<redisContext>, _ args: [String]) -> String? {
        var cStrings = args.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        var lengths = args.map { $0.utf8.count }
        let raw = cStrings.withUnsafeMutableBufferPointer { argv in
            argv.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: args.count) { p in
                redisCommandArgv(ctx, Int32(args.count), p, &lengths)
            }
        }
        guard let reply = raw?.assumingMemoryBound(to: redisReply.self) else { return nil }
        defer { freeReplyObject(raw) }
        switch reply.pointee.type {
        case REDIS_REPLY_ARRAY:
            let elements = (0..<reply.pointee.elements).map { reply.pointee.element[$0]! }
            return elements.map { String(cString: $0.pointee.str) }.joined(separator: " ")
        case REDIS_REPLY_STRING, REDIS_REPLY_STATUS: return String(cString: reply.pointee.str)
        case REDIS_REPLY_INTEGER: return String(reply.pointee.integer)
        case REDIS_REPLY_NIL: return "nil"
        default: return "error: " + String(cString: reply.pointee.str)
        }
    }

    func testHiredisBLPOPWhileAnotherFiberPushes() throws {
        let port = Int32(try server("GREEN_REDIS_PORT"))!
        let key = "green:test:\(getpid())"
        var order: [String] = []
        let waiters = (0..<5).map { i in
            Green.spawn { () -> String? in
                guard let ctx = redisConnect("127.0.0.1", port), ctx.pointee.err == 0 else { return nil }
                defer { redisFree(ctx) }
                order.append("waiting \(i)")
                let got = self.command(ctx, ["BLPOP", "\(key):\(i)", "10"])
                order.append("got \(i)")
                return got
            }
        }
        let pusher = Green.spawn { () -> Bool in
            guard let ctx = redisConnect("127.0.0.1", port), ctx.pointee.err == 0 else { return false }
            defer { redisFree(ctx) }
            try Green.sleep(for: .milliseconds(50)) // every waiter is blocked in BLPOP by now
            order.append("pushing")
            for i in 0..<5 { _ = self.command(ctx, ["RPUSH", "\(key):\(i)", "value \(i)"]) }
            return true
        }
        XCTAssertTrue(try pusher.value)
        let values = try waiters.map { try $0.value }
        XCTAssertEqual(values, (0..<5).map { "\(key):\($0) value \($0)" })
        // All five were blocked in BLPOP at once (in whatever order their
        // connects finished) before the pusher ran.
        XCTAssertEqual(Set(order.prefix(5)), Set((0..<5).map { "waiting \($0)" }))
        XCTAssertEqual(order[5], "pushing")
    }
}
