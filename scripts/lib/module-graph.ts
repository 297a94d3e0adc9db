// The size of each edge function's module graph: what `supabase functions deploy` bundles.
//
// The deploy bundle is an eszip built by the edge-runtime, which the CLI brotli-compresses and
// uploads (supabase/cli pkg/function/bundle.go `Compress`; its "Deploying Function: <name> (script
// size: …)" line is that compressed size). The eszip holds every local module the function imports
// and, for npm packages, the WHOLE folder of every package the graph reaches (edge-runtime's
// build_npm_vfs adds each package folder recursively), whatever subpath is imported: a package
// counts with all its files (libphonenumber-js is ~10 MB whether the code imports its default
// entry, /min or /mobile, of which it loads ~0.26 MB).
//
// Two figures per function, from `deno info --json` with the functions' import map (deno.json):
//   total   local modules + whole package folders, in bytes: what `deno info` prints as "size"
//           (in MiB), the figure Supabase's "Edge Function bundle size issues" page says to check;
//   upload  those same files brotli-compressed as the CLI does (quality 6, 4 MiB window): an
//           estimate of the deployed size, which hosted Supabase limits to 20 MB
//           (Supabase docs "functions/limits": 20 MB "after bundling using CLI").
// tests/functions/module_graph.test.ts keeps every function's upload under UPLOAD_BUDGET_BYTES.
//
//   deno run -A scripts/lib/module-graph.ts        prints the table (README, "Module graphs")
import { brotliCompressSync, constants } from "node:zlib";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { REPO_ROOT } from "../local-supabase/cluster.ts";

/** Hosted Supabase refuses a function over 20 MB: the budget keeps 1 MB of it free. */
export const UPLOAD_BUDGET_BYTES = 19_000_000;

export const FUNCTIONS_DIR = join(REPO_ROOT, "supabase", "functions");

export interface ModuleGraphSize {
  name: string;
  /** Local modules + npm package folders (what `deno info` calls size), in bytes. */
  total: number;
  /** Our modules (supabase/functions/**). */
  own: number;
  /** npm packages, largest first, each with its whole folder. */
  packages: { name: string; bytes: number }[];
  /** The same files brotli-compressed as the CLI compresses the bundle: the deployed size, about. */
  upload: number;
}

/** The functions: folders of supabase/functions with an index.ts, not starting with _ or . */
export async function functionNames(): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(FUNCTIONS_DIR)) {
    if (!e.isDirectory || /^[_.]/.test(e.name)) continue;
    if (await Deno.stat(join(FUNCTIONS_DIR, e.name, "index.ts")).then(() => true, () => false)) names.push(e.name);
  }
  return names.sort();
}

/** Every file under `dir`, in a stable order. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = (await Array.fromAsync(Deno.readDir(dir))).sort((a, b) => a.name.localeCompare(b.name));
  const files: string[] = [];
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory) files.push(...await filesUnder(path));
    else if (e.isFile) files.push(path);
  }
  return files;
}

interface DenoInfo {
  modules: { specifier: string; size?: number }[];
  npmPackages: Record<string, { name: string; version: string; localPath?: string }>;
}

/** The module graph of supabase/functions/<name>/index.ts, measured with `deno info --json`. */
export async function moduleGraphSize(name: string): Promise<ModuleGraphSize> {
  const entry = join(FUNCTIONS_DIR, name, "index.ts");
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--config", join(REPO_ROOT, "deno.json"), entry],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`deno info ${entry} failed: ${new TextDecoder().decode(out.stderr).slice(-2000)}`);
  const info: DenoInfo = JSON.parse(new TextDecoder().decode(out.stdout));
  const files: string[] = [];
  let own = 0;
  for (const m of info.modules) {
    if (!m.specifier.startsWith("file:") || m.size === undefined) continue;
    const path = fileURLToPath(m.specifier);
    files.push(path);
    if (path.startsWith(FUNCTIONS_DIR + "/")) own += m.size;
  }
  const packages: ModuleGraphSize["packages"] = [];
  for (const [id, pkg] of Object.entries(info.npmPackages).sort(([a], [b]) => a.localeCompare(b))) {
    if (!pkg.localPath) throw new Error(`deno info gave no folder for npm package ${id}`);
    const pkgFiles = await filesUnder(pkg.localPath);
    files.push(...pkgFiles);
    let bytes = 0;
    for (const f of pkgFiles) bytes += (await Deno.stat(f)).size;
    packages.push({ name: id, bytes });
  }
  packages.sort((a, b) => b.bytes - a.bytes);
  const contents = await Promise.all(files.map((f) => Deno.readFile(f)));
  const all = new Uint8Array(contents.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of contents) {
    all.set(c, at);
    at += c.length;
  }
  // The CLI's writer: andybalholm/brotli NewWriter, i.e. quality 6 and the default 22-bit window.
  const upload = brotliCompressSync(all, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 6, [constants.BROTLI_PARAM_LGWIN]: 22 },
  }).length;
  return { name, own, packages, total: all.length, upload };
}

/** Bytes as MB (10^6, as Supabase states its limit) with two decimals. */
export const mb = (bytes: number) => `${(bytes / 1e6).toFixed(2)} MB`;

if (import.meta.main) {
  console.log(`| Function | Module graph | Upload (est.) | Our code | npm packages (whole folders, largest first) |`);
  console.log(`| --- | --- | --- | --- | --- |`);
  for (const name of await functionNames()) {
    const g = await moduleGraphSize(name);
    console.log(`| \`${name}\` | ${mb(g.total)} | ${mb(g.upload)} | ${(g.own / 1e3).toFixed(0)} kB | ` +
      `${g.packages.map((p) => `${p.name} ${mb(p.bytes)}`).join(", ")} |`);
  }
  console.log(`\nbudget per function (upload): ${mb(UPLOAD_BUDGET_BYTES)} (hosted limit 20 MB)`);
}
