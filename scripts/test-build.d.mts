/** Source files (from the package root) the tests run as bundles of their own. */
export declare const ENTRIES: string[]
/** Where `entry`'s bundle is in `dir`. */
export declare function bundled(dir: string, entry: string): string
/** Bundles every entry into `dir`. */
export declare function buildForTests(dir: string): Promise<void>
