// Hummingbird's hello world: GET / and GET /plaintext answer "Hello, World!".
//
//   hummingbird-hello [port] [event loops]
//
// One event loop is the single-threaded contender; the route handlers run
// on Swift's global executor, as in any Hummingbird application.
import Hummingbird
import Logging
import NIOPosix

let args = CommandLine.arguments
let port = args.count > 1 ? Int(args[1]) ?? 8080 : 8080
let loops = args.count > 2 ? Int(args[2]) ?? 1 : 1

let router = Router()
router.get("/") { _, _ in "Hello, World!" }
router.get("/plaintext") { _, _ in "Hello, World!" }

var logger = Logger(label: "hummingbird-hello")
logger.logLevel = .warning
let app = Application(
    router: router,
    configuration: .init(address: .hostname("127.0.0.1", port: port)),
    eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup(numberOfThreads: loops)),
    logger: logger
)
print("hummingbird-hello on http://127.0.0.1:\(port)/ with \(loops) event loop(s)")
try await app.runService()
