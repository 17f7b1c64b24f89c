// The SwiftNIO contender for the echo benchmark: NIO's own echo server
// shape (a ChannelInboundHandler writing back what it reads) on one event
// loop, MultiThreadedEventLoopGroup(numberOfThreads: 1).
//
//   nio-echo PORT
import NIOCore
import NIOPosix

let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 9000 : 9000
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

let channel = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelOption(.maxMessagesPerRead, value: 16)
    .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator())
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoHandler()) }
    }
    .bind(host: "127.0.0.1", port: port)
    .wait()
print("nio-echo on 127.0.0.1:\(port)")
try channel.closeFuture.wait()
