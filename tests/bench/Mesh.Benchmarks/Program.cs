using BenchmarkDotNet.Running;
using Mesh.Benchmarks;

// Micro-benchmarks of the WireGuard core (Mesh.WireGuard): the data path, handshakes, and the
// per-packet lookups. Not an end-to-end throughput test: that is tests/bench/wg-throughput.sh.
//   dotnet run -c Release --project tests/bench/Mesh.Benchmarks -- --filter '*'
// tests/bench/micro.sh runs them all and prints Gbit/s, handshakes/s and lookups/s per core.
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, MicroConfig.Create());
