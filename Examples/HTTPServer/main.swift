// An HTTP/1.1 server written in plain blocking style on Green: a fiber per
// connection, keep-alive, pipelining-safe, Content-Length and chunked
// bodies, 400 for what it does not accept.
//
//   swift run -c release http-server [port] [threads]
//   curl http://127.0.0.1:8080/        ->  Hello, World!
import Glibc
import Green
import HTTPServerKit

let args = CommandLine.arguments
let port = args.count > 1 ? UInt16(args[1]) ?? 8080 : 8080
let threads = args.count > 2 ? Int(args[2]) ?? 1 : 1

func route(_ request: HTTPRequest) -> HTTPResponse {
    switch (request.method, request.target) {
    case ("GET", "/"), ("GET", "/plaintext"): return HTTPResponse(text: "Hello, World!")
    case ("POST", "/echo"): return HTTPResponse(body: request.body)
    default: return HTTPResponse(status: 404, text: "not found\n")
    }
}

let server = try ThreadedServer(threads: threads, host: "127.0.0.1", port: port) { conn in
    try serveHTTP(conn, handler: route)
}
print("http-server on http://127.0.0.1:\(server.port)/ with \(threads) thread(s); Ctrl-C to stop")
Green.onSignal(SIGINT) { server.stop(grace: .seconds(2)); exit(0) }
Green.onSignal(SIGTERM) { server.stop(grace: .seconds(2)); exit(0) }
Hub.current.beginExternalWork()
try Event().wait() // the signal handlers end the process
