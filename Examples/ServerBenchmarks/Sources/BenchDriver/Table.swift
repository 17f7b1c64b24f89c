/// A Markdown table whose columns are padded to line up in a terminal too.
struct Table {
    let headers: [String]
    private(set) var rows: [[String]] = []
    /// Columns whose cells are right-aligned (numbers).
    let rightAligned: Set<Int>

    /// A table with these column headers; numeric columns right-aligned.
    init(_ headers: [String], rightAligned: Set<Int> = []) {
        self.headers = headers
        self.rightAligned = rightAligned
    }

    /// Add a row (as many cells as headers).
    mutating func add(_ cells: [String]) { rows.append(cells) }

    /// The table as Markdown text.
    func render() -> String {
        let widths = headers.indices.map { i in ([headers] + rows).map { $0[i].count }.max() ?? 0 }
        /// One padded line.
        func line(_ cells: [String]) -> String {
            let padded = cells.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return rightAligned.contains(i) ? pad + cell : cell + pad
            }
            return "| " + padded.joined(separator: " | ") + " |"
        }
        let rule = "|" + widths.enumerated().map { i, w in
            rightAligned.contains(i) ? String(repeating: "-", count: w + 1) + ":" : String(repeating: "-", count: w + 2)
        }.joined(separator: "|") + "|"
        return ([line(headers), rule] + rows.map(line)).joined(separator: "\n")
    }
}
