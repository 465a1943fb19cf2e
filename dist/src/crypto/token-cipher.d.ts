/**
 * AES-256-GCM for tokens at rest. Each ciphertext names its key (`v1.<keyId>.<iv>.<data+tag>`),
 * so keys rotate: encrypt with the first key, decrypt with whichever key a value names.
 */
export interface TokenCipher {
    encrypt(plaintext: string): string;
    decrypt(sealed: string): string;
    currentKeyId: string;
}
export interface CipherKey {
    id: string;
    key: Buffer;
}
/**
 * Parses `TOKEN_ENCRYPTION_KEY`: comma-separated keys, newest first, each `id:base64` or bare
 * base64 (its id is then derived from the key). Every key is 32 bytes.
 */
export declare function parseCipherKeys(value: string): CipherKey[];
export declare function createTokenCipher(keys: CipherKey[]): TokenCipher;
