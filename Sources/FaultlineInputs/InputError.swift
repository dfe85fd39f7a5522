/// A bad input that no lower layer can see on its own: two files that disagree, a value that is
/// well-formed but not allowed, a missing option. The description is one line naming the option and the
/// file, and saying what to do; the command line prints it and exits with code 2.
public struct InputError: Error, CustomStringConvertible, Sendable {
    public var description: String
    /// An error with this one-line message (name the option and the file, and say what to do).
    public init(_ description: String) { self.description = description }
}
