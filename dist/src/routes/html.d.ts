/** The few pages a browser sees from us: plain, escaped, no script, no external resource. */
export declare function htmlPage(title: string, message: string, opts?: {
    refreshTo?: string;
    refreshSeconds?: number;
}): string;
