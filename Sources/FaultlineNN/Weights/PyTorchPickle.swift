import FaultlineIO
import Foundation

/// Recognises `torch.save` files (`.pt`/`.pth`) by their magic bytes, so a model path that holds one
/// gets the one-line fix instead of a parse error. Faultline never unpickles: a pickle can run code.
///
/// Recognised: a zip archive (`PK\u{3}\u{4}`, what `torch.save` writes since torch 1.6, holding
/// `…/data.pkl`), and a legacy pickle (byte 0x80 then protocol 2…5) whose byte 8 is not `{` (a
/// `.safetensors` file whose 8-byte header length happens to begin 0x80 0x02 has its JSON header there).
public enum PyTorchPickle {
    /// The fix printed with the refusal.
    public static let fix = #"convert it in Python: safetensors.torch.save_file(model.state_dict(), "model.safetensors") "#
        + #"(then give the architecture with --spec) or torch.onnx.export(model, x, "model.onnx")"#

    /// What the first bytes of a file say it is: nil for anything but a pickle or a zip archive.
    public static func kind(of bytes: some Collection<UInt8>) -> String? {
        let b = Array(bytes.prefix(9))
        if b.starts(with: [0x50, 0x4B, 0x03, 0x04]) || b.starts(with: [0x50, 0x4B, 0x05, 0x06]) { return "zip" }
        if b.count >= 2, b[0] == 0x80, (2...5).contains(b[1]), b.count < 9 || b[8] != UInt8(ascii: "{") { return "pickle" }
        return nil
    }

    /// Throws `IOError(.badMagic)` naming `path` when the file is a PyTorch pickle (or any zip archive);
    /// returns quietly for anything else, including a file it cannot open (the reader reports that).
    /// Reads at most 9 bytes, plus up to 64 KiB of a zip's end to find `data.pkl`.
    public static func refuse(_ path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { return }
        defer { try? handle.close() }
        guard let head = try? handle.read(upToCount: 9), let kind = kind(of: head) else { return }
        if kind == "pickle" {
            throw IOError(.badMagic, file: path, "a legacy PyTorch pickle (torch.save), which Faultline never unpickles; \(fix)")
        }
        let end = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: end > 65_536 ? end - 65_536 : 0)
        let tail = (try? handle.readToEnd()) ?? Data()
        if tail.range(of: Data("data.pkl".utf8)) != nil {
            throw IOError(.badMagic, file: path, "a PyTorch .pt/.pth file (torch.save: a zip holding data.pkl), which Faultline never unpickles; \(fix)")
        }
        throw IOError(.badMagic, file: path, "a zip archive, not a .safetensors state_dict or an .onnx model; \(fix)")
    }
}
