// Migration example: synchronous Swift — URLSession behind a semaphore, an
// NSLock around shared state, a DispatchGroup to wait for the lot — run on
// one thread per job, then on fibers of one thread. The one line that
// changes is how each job is started (`Thread { … }.start()` becomes
// `Green.spawn { … }`); the jobs' code is the same.
//
//   swift run -c release sync-swift-to-fibers
import Dispatch
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Green

// MARK: the synchronous code, as an app already has it

/// One session for the app, allowing as many connections as there are jobs.
let session: URLSession = {
    let configuration = URLSessionConfiguration.default
    configuration.httpMaximumConnectionsPerHost = 100
    return URLSession(configuration: configuration)
}()

/// Fetches a price from the pricing service: blocking, with a semaphore.
func fetchPrice(of item: Int, from service: URL) -> Int {
    let done = DispatchSemaphore(value: 0)
    let answer = Answer()
    session.dataTask(with: service.appendingPathComponent("\(item)")) { data, _, _ in
        answer.text = data.map { String(decoding: $0, as: UTF8.self) } ?? ""
        done.signal()
    }.resume()
    done.wait()
    return Int(answer.text) ?? -1
}

final class Answer: @unchecked Sendable { var text = "" }

/// Totals shared by every job, behind a lock.
final class Ledger: @unchecked Sendable {
    private let lock = NSLock()
    private var total = 0
    private var priced = 0
    func add(_ price: Int) {
        lock.lock()
        defer { lock.unlock() }
        total += price
        priced += 1
    }
    var summary: String { lock.withLock { "\(priced) items, total \(total)" } }
}

/// Prices `items` concurrently, each job started by `start`, and waits for all.
func priceCatalog(_ items: Range<Int>, service: URL, start: (@escaping @Sendable () -> Void) -> Void) -> String {
    let ledger = Ledger()
    let group = DispatchGroup()
    for item in items {
        group.enter()
        start {
            ledger.add(fetchPrice(of: item, from: service))
            group.leave()
        }
    }
    group.wait()
    return ledger.summary
}

// MARK: running it both ways

if CommandLine.arguments.dropFirst().first == "--serve" { PricingService.serve(answerAfter: 0.3) }
let service = try PricingService.start() // this program again, as another process: its threads are not counted below
defer { service.terminate() }
let url = URL(string: "http://127.0.0.1:\(service.port)/price")!
let items = 0..<50

func measured(_ label: String, _ body: () -> String) -> (String, Double) {
    let start = ContinuousClock.now
    let result = body()
    let (s, atto) = (ContinuousClock.now - start).components
    let ms = Double(s) * 1000 + Double(atto) / 1e15
    print("\(label): \(result) in \(Int(ms)) ms, peak OS threads \(peakThreads())")
    return (result, ms)
}

print("\(items.count) jobs, each a blocking HTTP request answered in 300 ms (one after another: \(items.count * 300) ms)")
// Fibers first: the threads that Dispatch and URLSession start for a run stay a while, idle.
resetPeakThreads()
let (onFibers, _) = measured("one fiber per job ") {
    priceCatalog(items, service: url) { job in Green.spawn { job() } } // the one changed line
}
resetPeakThreads()
let (onThreads, _) = measured("one thread per job") {
    priceCatalog(items, service: url) { job in Thread { job() }.start() }
}
precondition(onThreads == onFibers, "both ways must give the same totals")
print("same totals: \(onThreads == onFibers)")
