import Testing
@testable import Reactor

/// The mapped array behind the fd table and the hub's memberships.
@Suite struct MappedArrayTests {
    final class Box {
        let value: Int
        init(_ value: Int) { self.value = value }
    }

    /// Growing past the first mapping (mremap) keeps every entry, references included, and fills
    /// new ones; nothing is reserved for indices never used.
    @Test func growsAndKeepsItsEntries() {
        var array = MappedArray<Box?>(capacity: 16)
        array.ensure(3, filling: nil)
        #expect(array.count == 4 && array.capacity == 16)
        for index in array.indices { array[index] = Box(index) }
        array.ensure(100_000, filling: nil)
        #expect(array.count == 100_001)
        #expect(array.capacity >= 100_001 && array.capacity < 200_000)
        #expect((0..<4).allSatisfy { array[$0]?.value == $0 })
        #expect(array[100_000] == nil)
        array[99_999] = Box(7)
        array[99_999] = nil  // the old box is released, not leaked
        array.ensure(50, filling: Box(-1))  // below count: no change
        #expect(array[50] == nil)
    }
}

extension MappedArrayTests {
    /// Shrinking drops the entries past the new count (references released) and `ensure` fills
    /// them again with the filler, not with what they held.
    @Test func shrinksAndRefills() {
        var array = MappedArray<Box?>(capacity: 16)
        array.ensure(9_999, filling: nil)
        for index in array.indices { array[index] = Box(index) }
        array.shrink(to: 10)
        #expect(array.count == 10 && (0..<10).allSatisfy { array[$0]?.value == $0 })
        array.shrink(to: 20)  // above count: no change
        #expect(array.count == 10)
        array.ensure(5_000, filling: Box(-1))
        #expect(array.count == 5_001 && array[4_000]?.value == -1 && array[9]?.value == 9)
    }
}
