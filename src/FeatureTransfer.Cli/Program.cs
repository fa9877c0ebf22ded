using System.CommandLine;
using FeatureTransfer.Cli;

// `ft`: a thin layer over the FeatureTransfer library. Each command lives in Commands/<Name>Command.cs, parses its
// options, calls the library and maps user errors to exit codes (see CliRunner); FtCli builds and runs the tree.
// Ctrl-C cancels the command's token; give long work (a fine-tune saving its best model, an extraction writing its
// last checkpoint) time to finish cleanly instead of System.CommandLine's default 2 s before the process is killed.
return await FtCli.RunAsync(args, new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(60) });
