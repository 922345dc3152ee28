/** VMs: the list (`#/vms`, with the create form) or one VM (`#/vms/<name>`). */
import type { PageProps } from '../app/context.ts';
import { VmDetail } from './vms/vm-detail.tsx';
import { VmList } from './vms/vm-list.tsx';

export function VmsPage(props: PageProps) {
  const name = props.route.rest[0];
  return name ? <VmDetail key={name} {...props} name={name} /> : <VmList {...props} />;
}
