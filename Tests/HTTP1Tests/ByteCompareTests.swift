import HTTP1
import Testing

@Suite struct ByteCompareTests {
    /// `equals`, `hasPrefix` and `equalsIgnoringCase` compare a range against a literal, in bounds only.
    @Test func comparesRangesWithLiterals() {
        let text: [UInt8] = Array("GET /static/app.js Keep-Alive".utf8)
        text.withUnsafeBytes { bytes in
            #expect(bytes.equals(ByteRange(0, 3), "GET"))
            #expect(!bytes.equals(ByteRange(0, 3), "GE"))
            #expect(!bytes.equals(ByteRange(0, 3), "get"))
            #expect(bytes.hasPrefix(ByteRange(4, 18), "/static/"))
            #expect(!bytes.hasPrefix(ByteRange(4, 10), "/static/"), "a range shorter than the prefix")
            #expect(bytes.equalsIgnoringCase(ByteRange(19, 29), "keep-alive"))
            #expect(!bytes.equalsIgnoringCase(ByteRange(19, 29), "keep-alivf"))
            #expect(!bytes.equals(ByteRange(26, 32), "live.."), "a range past the end never matches")
            #expect(bytes.equals(ByteRange(3, 3), ""))
        }
    }

    /// `hexValue` reads both cases of HEXDIG and nothing else.
    @Test func hexDigits() {
        #expect(hexValue(UInt8(ascii: "0")) == 0)
        #expect(hexValue(UInt8(ascii: "9")) == 9)
        #expect(hexValue(UInt8(ascii: "a")) == 10)
        #expect(hexValue(UInt8(ascii: "F")) == 15)
        for byte in [UInt8(ascii: "g"), UInt8(ascii: "G"), UInt8(ascii: "/"), UInt8(ascii: ":"), 0, 0xFF] {
            #expect(hexValue(byte) == nil, "\(byte)")
        }
    }
}
