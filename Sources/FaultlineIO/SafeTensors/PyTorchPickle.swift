import Foundation

/// Recognises `torch.save` files (`.pt`/`.pth`) by their magic bytes, so a model path that holds one
/// gets the one-line fix instead of a parse error. Faultline never unpickles: a pickle can run code.
///
/// Recognised: a zip archive (`PK\u{3}\u{4}`, what `torch.save` writes since torch 1.6, holding
/// `…/data.pkl`, looked for in the last 64 KiB: the zip's central directory) and a legacy pickle
/// (byte 0x80 then protocol 2…5). Neither when byte 8 is `{`: that is a `.safetensors` file whose
/// 8-byte header length happens to begin so (0x80 0x02 is a 640-byte header), its JSON header there.
/// `SafeTensors.decode` (so every `.safetensors` reader) and the model loaders check this first.
public enum PyTorchPickle {
    /// The fix printed with the refusal.
    public static let fix = #"convert it in Python: safetensors.torch.save_file(model.state_dict(), "model.safetensors") "#
        + #"(then give the architecture with --spec) or torch.onnx.export(model, x, "model.onnx")"#

    /// What the first bytes of a file say it is: "zip", "pickle", or nil for anything else.
    public static func kind(of bytes: some Collection<UInt8>) -> String? {
        let b = Array(bytes.prefix(9))
        guard b.count < 9 || b[8] != UInt8(ascii: "{") else { return nil }
        if b.starts(with: [0x50, 0x4B, 0x03, 0x04]) || b.starts(with: [0x50, 0x4B, 0x05, 0x06]) { return "zip" }
        if b.count >= 2, b[0] == 0x80, (2...5).contains(b[1]) { return "pickle" }
        return nil
    }

    /// The one-line refusal for a file whose first bytes are `head` and last 64 KiB `tail`, or nil when
    /// it is neither a pickle nor a zip archive.
    public static func refusal(head: some Collection<UInt8>, tail: some Collection<UInt8>) -> String? {
        switch kind(of: head) {
        case "pickle": return "a legacy PyTorch pickle (torch.save), which Faultline never unpickles; \(fix)"
        case "zip":
            let needle = Array("data.pkl".utf8), t = Array(tail)
            let found = t.count >= needle.count && (0...(t.count - needle.count)).contains { i in t[i..<(i + needle.count)].elementsEqual(needle) }
            return found ? "a PyTorch .pt/.pth file (torch.save: a zip holding data.pkl), which Faultline never unpickles; \(fix)"
                : "a zip archive, not a .safetensors state_dict or an .onnx model; \(fix)"
        default: return nil
        }
    }

    /// The refusal for bytes in memory (`refusal(head:tail:)` on their first 9 and last 65536 bytes).
    public static func refusal(_ raw: UnsafeRawBufferPointer) -> String? {
        refusal(head: raw.prefix(9), tail: raw.suffix(65_536))
    }

    /// Throws `IOError(.badMagic)` naming `path` when the file is a PyTorch pickle (or any zip archive);
    /// returns quietly for anything else, including a file it cannot open (the reader reports that).
    /// Reads at most 9 bytes and the last 64 KiB.
    public static func refuse(_ path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { return }
        defer { try? handle.close() }
        guard let head = try? handle.read(upToCount: 9), kind(of: head) != nil else { return }
        let end = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: end > 65_536 ? end - 65_536 : 0)
        let tail = (try? handle.readToEnd()) ?? Data()
        if let message = refusal(head: head, tail: tail) { throw IOError(.badMagic, file: path, message) }
    }
}
