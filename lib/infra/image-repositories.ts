import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { Construct } from 'constructs';
import { invalidProp } from './invalid-prop.js';

export type ImageKind = 'cpu' | 'gpu';

export const imageKinds: readonly ImageKind[] = ['cpu', 'gpu'];

export interface ImageRepositoriesProps {
  /** Repositories are named `<namePrefix>/cpu` and `<namePrefix>/gpu`. */
  readonly namePrefix: string;
  /**
   * Images kept per repository; older ones expire.
   * @default 30
   */
  readonly keepImages?: number;
  /**
   * Delete the repositories, images included, with the stack.
   * @default false
   */
  readonly destroyOnDelete?: boolean;
}

/**
 * The ECR repositories of the two job images: immutable tags (a tag always means one image),
 * scanned on push, untagged images gone after a day and only the newest `keepImages` kept.
 */
export class ImageRepositories extends Construct {
  readonly repositories: Readonly<Record<ImageKind, ecr.Repository>>;

  constructor(scope: Construct, id: string, props: ImageRepositoriesProps) {
    super(scope, id);
    const keepImages = props.keepImages ?? 30;
    if (!Number.isInteger(keepImages) || keepImages < 1) {
      throw invalidProp('ImageRepositories', id, 'keepImages', keepImages, 'must be a positive integer');
    }
    if (!/^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/.test(props.namePrefix)) {
      throw invalidProp(
        'ImageRepositories',
        id,
        'namePrefix',
        props.namePrefix,
        'must be a valid ECR repository name',
      );
    }
    const make = (kind: ImageKind): ecr.Repository =>
      new ecr.Repository(this, kind === 'cpu' ? 'Cpu' : 'Gpu', {
        repositoryName: `${props.namePrefix}/${kind}`,
        imageTagMutability: ecr.TagMutability.IMMUTABLE,
        imageScanOnPush: true,
        encryption: ecr.RepositoryEncryption.AES_256,
        lifecycleRules: [
          {
            rulePriority: 1,
            description: 'untagged images (failed pushes)',
            tagStatus: ecr.TagStatus.UNTAGGED,
            maxImageAge: Duration.days(1),
          },
          {
            rulePriority: 2,
            description: `keep the newest ${keepImages} images`,
            tagStatus: ecr.TagStatus.ANY,
            maxImageCount: keepImages,
          },
        ],
        removalPolicy: props.destroyOnDelete ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
        emptyOnDelete: props.destroyOnDelete ?? false,
      });
    this.repositories = { cpu: make('cpu'), gpu: make('gpu') };
  }
}
