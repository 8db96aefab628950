/// A coarse latency histogram (microseconds) small enough to keep one per second of a run: exact
/// below 16 µs, then 8 buckets per power of two (each within 12.5 % of its values), up to 2^40 µs.
/// Recording is a shift and an add into a fixed array (no allocation once made); two merge by
/// adding counts, so workers' seconds combine into the run's. Encoded sparsely (only non-empty
/// buckets) so an idle second costs a few bytes. `LoadRecorder`'s HdrHistograms stay the exact
/// figures for the whole run; these only draw the per-second percentiles of the HTML report.
public struct LatencyBuckets: Codable, Equatable, Sendable {
    /// Bucket counts; empty until the first value (most seconds of an idle run have none).
    private var counts: [UInt32] = []
    public private(set) var total: UInt64 = 0
    public private(set) var maximum: UInt64 = 0

    static let exactBelow: UInt64 = 16
    static let subBuckets = 8
    static let bucketCount = 16 + (40 - 4 + 1) * 8

    public init() {}

    /// The bucket of `value` µs.
    static func index(_ value: UInt64) -> Int {
        if value < exactBelow { return Int(value) }
        let exponent = 63 - value.leadingZeroBitCount  // ≥ 4
        guard exponent <= 40 else { return bucketCount - 1 }
        let sub = Int((value >> UInt64(exponent - 3)) & 7)
        return 16 + (exponent - 4) * subBuckets + sub
    }

    /// The middle of bucket `index`, in µs (what a percentile in it reads as).
    static func value(_ index: Int) -> UInt64 {
        if index < Int(exactBelow) { return UInt64(index) }
        let exponent = (index - 16) / subBuckets + 4
        let sub = UInt64((index - 16) % subBuckets)
        let width = UInt64(1) << UInt64(exponent - 3)
        return (8 + sub) * width + width / 2
    }

    public mutating func record(_ microseconds: UInt64) {
        if counts.isEmpty { counts = [UInt32](repeating: 0, count: LatencyBuckets.bucketCount) }
        counts[LatencyBuckets.index(microseconds)] &+= 1
        total += 1
        if microseconds > maximum { maximum = microseconds }
    }

    public mutating func merge(_ other: LatencyBuckets) {
        guard other.total > 0 else { return }
        if counts.isEmpty { counts = [UInt32](repeating: 0, count: LatencyBuckets.bucketCount) }
        for (index, count) in other.counts.enumerated() where count > 0 { counts[index] &+= count }
        total += other.total
        maximum = max(maximum, other.maximum)
    }

    /// The value below which `percent` of the recorded values fall (bucket middle; the maximum for
    /// 100 or when it is smaller); 0 when empty.
    public func percentile(_ percent: Double) -> UInt64 {
        guard total > 0 else { return 0 }
        let rank = max(1, UInt64((percent / 100 * Double(total)).rounded(.up)))
        var seen: UInt64 = 0
        for (index, count) in counts.enumerated() where count > 0 {
            seen += UInt64(count)
            if seen >= rank { return min(LatencyBuckets.value(index), maximum) }
        }
        return maximum
    }

    // Sparse: [[bucket, count], …] plus total and maximum.
    private enum CodingKeys: String, CodingKey { case buckets, total, maximum }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        total = try container.decode(UInt64.self, forKey: .total)
        maximum = try container.decode(UInt64.self, forKey: .maximum)
        let pairs = try container.decode([[UInt32]].self, forKey: .buckets)
        guard !pairs.isEmpty else { return }
        counts = [UInt32](repeating: 0, count: LatencyBuckets.bucketCount)
        for pair in pairs where pair.count == 2 && Int(pair[0]) < LatencyBuckets.bucketCount {
            counts[Int(pair[0])] = pair[1]
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(total, forKey: .total)
        try container.encode(maximum, forKey: .maximum)
        let pairs = counts.enumerated().filter { $0.element > 0 }.map { [UInt32($0.offset), $0.element] }
        try container.encode(pairs, forKey: .buckets)
    }
}
