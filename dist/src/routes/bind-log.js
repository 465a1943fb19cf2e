/** Puts the installation's id on every later log line of this request, the final one included. */
export function bindWorkflow(request, reply, workflowId) {
    request.log = request.log.child({ workflowId });
    reply.log = request.log;
}
