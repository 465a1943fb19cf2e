/**
 * The OAuth `state` sent through Wix and back: the installation's id, a dot, 256 random bits
 * (URL-safe). The id takes the callback straight to its installation, with no lookup; the random
 * part is what no one can guess. The installation keeps only the whole state's hash.
 */
export declare const newOAuthState: (installationId: string) => string;
/** The installation a state (of OAUTH_STATE_PATTERN's shape) belongs to. */
export declare const installationIdOf: (state: string) => string;
/** What the server keeps of a state: its hash, so a database read cannot replay it. */
export declare const hashOAuthState: (state: string) => string;
/** Constant-time equality for strings of any length (hashing first equalises the lengths). */
export declare function safeEqual(a: string, b: string): boolean;
/** The shape of a state we issue; anything else is rejected before a database read. */
export declare const OAUTH_STATE_PATTERN: RegExp;
