// How one flow node looks on the canvas: kind, id, a summary, an error badge,
// live counts, one input handle on top and one output handle per port below.
import { memo, useEffect } from 'react';
import { Handle, Position, useUpdateNodeInternals } from '@xyflow/react';
import { summary } from './nodes.js';

function FlowNode({ id, data, selected }) {
  const { node, ports, errors = [], stats, onPath } = data;
  // React Flow measures handles once; when ports come or go (a case added or renamed) it must measure again.
  const updateNodeInternals = useUpdateNodeInternals();
  const portKey = ports.map((p) => p.id).join('|');
  useEffect(() => { updateNodeInternals(id); }, [id, portKey, updateNodeInternals]);
  const cls = ['kaskad-node', `kind-${node.kind}`, selected && 'selected', errors.length && 'has-errors', onPath && 'on-path']
    .filter(Boolean).join(' ');
  return (
    <div className={cls} data-testid={`node-${id}`} title={errors.map((e) => e.message).join('\n')}>
      <Handle type="target" position={Position.Top} id="in" />
      <div className="node-head">
        <span className="node-kind">{node.kind}</span>
        <span className="node-id">{node.title || id}</span>
        {errors.length > 0 && <span className="badge error" data-testid={`badge-${id}`}>{errors.length}</span>}
      </div>
      <div className="node-summary">{summary(node)}</div>
      {stats && (
        <div className="node-stats" data-testid={`stats-${id}`}>
          <span title="runs that entered this node">in {stats.entered ?? 0}</span>
          <span title="runs waiting here now">waiting {stats.waiting ?? 0}</span>
          {stats.failed ? <span className="error" title="runs that failed here">failed {stats.failed}</span> : null}
        </div>
      )}
      <div className="node-ports">
        {ports.map((p, i) => (
          <div className="port" key={p.id} style={{ left: `${((i + 1) * 100) / (ports.length + 1)}%` }}>
            <span className="port-label">{p.label}{stats?.ports?.[p.id] !== undefined ? ` (${stats.ports[p.id]})` : ''}</span>
            <Handle type="source" position={Position.Bottom} id={p.id} style={{ left: '50%' }} />
          </div>
        ))}
      </div>
    </div>
  );
}

export default memo(FlowNode);
