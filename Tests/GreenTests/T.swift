import XCTest
import Green

final class SmokeTests: XCTestCase {
    func testSpawnAndJoin() throws {
        var order: [Int] = []
        let a = Green.spawn { () -> Int in order.append(1); try Green.sleep(for: .milliseconds(20)); order.append(3); return 10 }
        let b = Green.spawn { () -> Int in order.append(2); return 20 }
        XCTAssertEqual(try a.value + b.value, 30)
        XCTAssertEqual(order, [1, 2, 3])
    }
}
