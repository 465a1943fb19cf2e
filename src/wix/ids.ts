/**
 * Wix instance ids are GUIDs, not always RFC 4122 UUIDs: Wix's own include shapes such as
 * `1380b703-ce81-ff05-f115-39571d94dfcd`, with version and variant digits outside the RFC. Any
 * 8-4-4-4-12 hex GUID is accepted; a stricter check would turn a real install into a 400 and waste
 * its code. Ids are kept in lower case, as Wix writes them.
 */
export const WIX_GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/

export const normalizeInstanceId = (id: string) => id.toLowerCase()
