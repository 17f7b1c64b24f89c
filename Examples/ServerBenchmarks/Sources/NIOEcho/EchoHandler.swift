import NIOCore

/// SwiftNIO's echo handler: every buffer read is written back, and the
/// writes are flushed once per read burst.
final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Write back what arrived (flushed in `channelReadComplete`).
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    /// Send what this read burst wrote.
    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    /// A reset or broken connection just closes.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
