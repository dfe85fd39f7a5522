// The `faultline` executable: everything lives in the FaultlineCLI library.
import FaultlineCLI

FaultlineCommand.main()
