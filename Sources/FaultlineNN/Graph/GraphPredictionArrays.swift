import FaultlineIO

extension GraphModel.Prediction {
    /// The arrays `faultline predict` writes, in order: `logits`, `probabilities`, then `features_<tap>` per
    /// tap, where characters other than letters, digits, '.', '-' and '_' become '_' (`.npz` member names
    /// cannot hold '/'), leading '_' are dropped, and a name already taken gets '_' appended until unique.
    public var namedArrays: [(name: String, tensor: Tensor)] {
        var used: Set<String> = ["logits", "probabilities"]
        let features = taps.map { tap -> (name: String, tensor: Tensor) in
            let safe = String(tap.name.map { $0.isLetter || $0.isNumber || "._-".contains($0) ? $0 : "_" })
            var key = "features_" + safe.drop { $0 == "_" }
            while !used.insert(key).inserted { key += "_" }
            return (key, Tensor(tap.values))
        }
        return [("logits", Tensor(logits)), ("probabilities", Tensor(probabilities))] + features
    }
}
