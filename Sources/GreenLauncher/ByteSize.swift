/// The largest stack size accepted: a larger default is almost surely a typo,
/// and the preload library refuses it too.
let maximumStackSize = 1 << 30

/// Parses a size such as `65536`, `64k`, `1m` or `1G` (binary multiples) into
/// bytes; nil unless it is a whole number greater than 0 and at most 1 GiB.
func parseByteSize(_ text: String) -> Int? {
    var digits = Substring(text)
    var multiplier = 1
    switch digits.last {
    case "k", "K": multiplier = 1 << 10
    case "m", "M": multiplier = 1 << 20
    case "g", "G": multiplier = 1 << 30
    default: break
    }
    if multiplier != 1 { digits = digits.dropLast() }
    // Int(_:) alone would accept a sign; only plain digits are a size.
    guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(digits) else {
        return nil
    }
    let (bytes, overflow) = number.multipliedReportingOverflow(by: multiplier)
    guard !overflow, bytes > 0, bytes <= maximumStackSize else { return nil }
    return bytes
}
